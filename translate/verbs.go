package translate

import "github.com/containernetworking/cni/pkg/version"

// Verbs are the CNI verbs beyond ADD, DEL and VERSION that docker-cni sends
// for a network, by the cniVersion of its conflist.
type Verbs struct {
	// Status: STATUS before every Join's ADD (1.1.0 and later). A plugin
	// that is not ready fails the Join with its message, and nothing is
	// set up.
	Status bool
	// Check: CHECK of live attachments at reconcile (0.4.0 and later),
	// of those that are Checkable.
	Check bool
	// GC: GC at reconcile (1.1.0 and later), with docker-cni's live
	// attachments as the valid ones. Only where docker-cni owns every
	// attachment of the network (a generated conflist): a bound network's
	// plugins keep the pods' attachments too (their IPAM store, their
	// rules), which the pods' runtime lists in its own GC and docker-cni
	// cannot, so its GC would release the pods' addresses.
	GC bool
}

// VerbsFor says which verbs docker-cni sends for a conflist of version
// listVersion; bound is whether the network is bound to a conflist of the
// conf dir.
func VerbsFor(listVersion string, bound bool) Verbs {
	at := func(v string) bool {
		ok, err := version.GreaterThanOrEqualTo(listVersion, v)
		return err == nil && ok
	}
	return Verbs{Status: at("1.1.0"), Check: at("0.4.0"), GC: at("1.1.0") && !bound}
}

// Checkable says whether CHECK can hold for an attachment made in mode
// under the name addName, whose link is now named nameNow in the netns ADD
// ran in ("": not found there): the interface must be where ADD put it,
// under the name ADD gave it. It is in direct mode (libnetwork leaves the
// interface alone) and in handover mode on engines that keep the name
// docker-cni hands over (Docker 28 and newer; older ones, which hand over
// only on docker network connect, name it themselves). In move mode the
// chain ran in a scratch netns that is gone by then. A link not found is
// checked: CHECK says what is missing.
func Checkable(mode JoinMode, addName, nameNow string) bool {
	if mode != JoinDirect && mode != JoinHandover {
		return false
	}
	return nameNow == "" || nameNow == addName
}
