// Package translate holds the pure middle of docker-cni: it turns Docker's
// CNM requests and the stored state of a network into CNI network
// configuration lists and runtime configuration, and turns CNI results into
// CNM responses.
//
// Nothing here does I/O: no files, no exec, no netlink, no clocks, no
// randomness. Facts about the machine (which plugins exist, which subnets are
// taken) are passed in by the callers at the edges.
package translate
