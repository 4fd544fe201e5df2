package e2e

import (
	"fmt"
	img "image" // image is the test image's name in this package
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"strings"
)

// plotStarts draws docs/performance.png: per engine a group of bars, one
// per network kind, the median start, with min–max whiskers and labels.
// The standard library has no font: glyphs is a 3×5 bitmap one.
func plotStarts(path string, r *benchReport) error {
	const w, h, left, right, top, bottom = 1000, 480, 70, 20, 80, 50
	c := canvas{img.NewRGBA(img.Rect(0, 0, w, h))}
	black, grey := color.RGBA{0x20, 0x20, 0x20, 0xff}, color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	colors := []color.RGBA{{0x9e, 0x9e, 0x9e, 0xff}, {0x4c, 0x78, 0xa8, 0xff}, {0xf5, 0x85, 0x18, 0xff}, {0x54, 0xa2, 0x4b, 0xff}, {0xb2, 0x79, 0xa2, 0xff}}
	c.rect(0, 0, w, h, color.White)
	c.text(left, 14, 2, "CONTAINER START: DOCKER RUN --RM --NETWORK N BUSYBOX TRUE", black)
	c.text(left, 34, 2, fmt.Sprintf("MS, BAR = MEDIAN OF %d INTERLEAVED RUNS, WHISKER = MIN-MAX", benchRuns), black)
	for i, x := 0, left; i < len(benchKinds); i++ {
		c.rect(x, 56, x+14, 70, colors[i])
		c.text(x+20, 58, 2, benchKinds[i], black)
		x += 50 + textWidth(benchKinds[i], 2)
	}
	maxV := 1.0
	for _, sr := range r.starts {
		for _, k := range benchKinds {
			maxV = math.Max(maxV, ms(sr.runs[k].max()))
		}
	}
	step := niceStep(maxV / 6)
	yMax := math.Ceil(maxV*1.08/step) * step
	y := func(v float64) int { return h - bottom - int(v/yMax*float64(h-top-bottom-10)) }
	for v := 0.0; v <= yMax+step/2; v += step {
		c.rect(left, y(v), w-right, y(v)+1, grey)
		l := fmt.Sprintf("%g", v)
		c.text(left-8-textWidth(l, 2), y(v)-5, 2, l, black)
	}
	c.rect(left, top, left+2, y(0)+1, black)
	if len(r.starts) == 0 {
		c.text(left+20, h/2, 3, "NOT RUN", black)
	}
	groupW := (w - left - right) / max(1, len(r.starts))
	barW := groupW / (len(benchKinds) + 1)
	for g, sr := range r.starts {
		gx := left + g*groupW + barW/2
		for i, k := range benchKinds {
			d := sr.runs[k]
			if len(d) == 0 {
				continue
			}
			x0, x1 := gx+i*barW+4, gx+(i+1)*barW-4
			c.rect(x0, y(ms(d.median())), x1, y(0), colors[i])
			mid, lo, hi := (x0+x1)/2, y(ms(d.min())), y(ms(d.max()))
			c.rect(mid-1, hi, mid+1, lo, black)
			c.rect(mid-7, hi, mid+7, hi+2, black)
			c.rect(mid-7, lo, mid+7, lo+2, black)
			l := fmt.Sprintf("%.0f", ms(d.median()))
			c.text(mid-textWidth(l, 2)/2, hi-14, 2, l, black)
		}
		l := r.engineLabel(sr.engine)
		c.text(left+g*groupW+(groupW-textWidth(l, 2))/2, h-bottom+14, 2, l, black)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, c.RGBA); err != nil {
		f.Close()
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return f.Close()
}

// niceStep is the 1, 2 or 5 times a power of ten at or above v.
func niceStep(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

type canvas struct{ *img.RGBA }

func (c canvas) rect(x0, y0, x1, y1 int, col color.Color) {
	draw.Draw(c.RGBA, img.Rect(x0, y0, x1, y1), &img.Uniform{col}, img.Point{}, draw.Src)
}

// text draws s upper-cased, its top left at x, y, each font pixel px wide.
func (c canvas) text(x, y, px int, s string, col color.Color) {
	for _, r := range strings.ToUpper(s) {
		for j, row := range strings.Fields(glyphs[r]) {
			for i, bit := range row {
				if bit == '1' {
					c.rect(x+i*px, y+j*px, x+(i+1)*px, y+(j+1)*px, col)
				}
			}
		}
		x += 4 * px
	}
}

func textWidth(s string, px int) int { return len([]rune(s))*4*px - px }

// glyphs is a 3×5 font: five rows of three pixels, top row first.
var glyphs = map[rune]string{
	'A': "010 101 111 101 101", 'B': "110 101 110 101 110", 'C': "011 100 100 100 011",
	'D': "110 101 101 101 110", 'E': "111 100 110 100 111", 'F': "111 100 110 100 100",
	'G': "011 100 101 101 011", 'H': "101 101 111 101 101", 'I': "111 010 010 010 111",
	'J': "001 001 001 101 010", 'K': "101 101 110 101 101", 'L': "100 100 100 100 111",
	'M': "101 111 111 101 101", 'N': "110 101 101 101 101", 'O': "010 101 101 101 010",
	'P': "110 101 110 100 100", 'Q': "010 101 101 110 011", 'R': "110 101 110 101 101",
	'S': "011 100 010 001 110", 'T': "111 010 010 010 010", 'U': "101 101 101 101 111",
	'V': "101 101 101 101 010", 'W': "101 101 111 111 101", 'X': "101 101 010 101 101",
	'Y': "101 101 010 010 010", 'Z': "111 001 010 100 111",
	'0': "111 101 101 101 111", '1': "010 110 010 010 111", '2': "110 001 010 100 111",
	'3': "110 001 010 001 110", '4': "101 101 111 001 001", '5': "111 100 110 001 110",
	'6': "011 100 111 101 111", '7': "111 001 010 010 010", '8': "111 101 111 101 111",
	'9': "111 101 111 001 110", '.': "000 000 000 000 010", ',': "000 000 000 010 100",
	':': "000 010 000 010 000", '-': "000 000 111 000 000", '–': "000 000 111 000 000",
	'(': "001 010 010 010 001", ')': "100 010 010 010 100", '/': "001 001 010 100 100",
	'%': "101 001 010 100 101", '=': "000 111 000 111 000", '+': "000 010 111 010 000",
	'[': "110 100 100 100 110", ']': "011 001 001 001 011", '_': "000 000 000 000 111",
}
