package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Plot geometry, in SVG user units.
const (
	plotW, plotH                       = 720, 420
	padLeft, padRight, padTop, padDown = 70, 180, 40, 50
)

// series is one line of the plot.
type series struct {
	name  string
	color string
	// dash is the stroke-dasharray; empty draws a solid line.
	dash string
	x, y []float64
}

// WriteSVG draws delivery latency (p50 and p99) against connected clients
// for each fan-out transport, with the target as a dashed line. It writes
// an empty plot with a note when no fan-out ran.
func (r *Report) WriteSVG(w io.Writer) error {
	colors := map[string]string{"WebSocket": "#1f77b4", "SSE": "#d62728"}
	var ss []series
	for _, s := range r.fanoutSteps() {
		p50 := series{name: s.name + " p50", color: colors[s.name], dash: "6 4"}
		p99 := series{name: s.name + " p99", color: colors[s.name]}
		for _, st := range s.steps {
			p50.x, p50.y = append(p50.x, float64(st.Clients)), append(p50.y, st.P50ms)
			p99.x, p99.y = append(p99.x, float64(st.Clients)), append(p99.y, st.P99ms)
		}
		ss = append(ss, p99, p50)
	}
	xMax, yMax, yMin := 1.0, float64(TargetFanoutP99ms), float64(TargetFanoutP99ms)
	for _, s := range ss {
		for i := range s.x {
			xMax, yMax = math.Max(xMax, s.x[i]), math.Max(yMax, s.y[i])
			if s.y[i] > 0 {
				yMin = math.Min(yMin, s.y[i])
			}
		}
	}
	xTicks := niceTicks(xMax)
	xMax = xTicks[len(xTicks)-1]
	innerW, innerH := float64(plotW-padLeft-padRight), float64(plotH-padTop-padDown)
	px := func(x float64) float64 { return padLeft + x/xMax*innerW }
	// A latency that collapses spans decades: then the y axis is
	// logarithmic, so that the small figures stay readable.
	logScale := yMax/yMin > 50
	var yTicks []float64
	var py func(float64) float64
	if logScale {
		lo, hi := math.Floor(math.Log10(yMin)), math.Ceil(math.Log10(yMax))
		for e := lo; e <= hi; e++ {
			yTicks = append(yTicks, math.Pow(10, e))
		}
		py = func(y float64) float64 {
			y = math.Max(y, yTicks[0])
			return padTop + innerH - (math.Log10(y)-lo)/(hi-lo)*innerH
		}
	} else {
		yTicks = niceTicks(yMax * 1.05)
		top := yTicks[len(yTicks)-1]
		py = func(y float64) float64 { return padTop + innerH - y/top*innerH }
	}
	yLabel := "latency (ms)"
	if logScale {
		yLabel = "latency (ms, log scale)"
	}
	bottom := padTop + innerH

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		plotW, plotH, plotW, plotH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", padLeft,
		html.EscapeString(fmt.Sprintf("Delivery latency (commit → client read) against clients, %s run, %d CPUs", r.Mode, r.Machine.CPUs)))
	for _, t := range yTicks {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", padLeft, py(t), px(xMax), py(t))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padLeft-6, py(t)+4, tickLabel(t))
	}
	for _, t := range xTicks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", px(t), padTop, px(t), bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", px(t), bottom+18, tickLabel(t))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#444"/>`+"\n", padLeft, padTop, innerW, innerH)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">connected clients</text>`+"\n", padLeft+innerW/2, plotH-10)
	fmt.Fprintf(&b, `<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", padTop+innerH/2, yLabel)
	target := py(TargetFanoutP99ms)
	targetLine := series{name: fmt.Sprintf("target p99 %d ms", TargetFanoutP99ms), color: "#2ca02c", dash: "2 4"}
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n",
		padLeft, target, px(xMax), target, targetLine.color, dash(targetLine.dash))
	legend := append(append([]series{}, ss...), targetLine)
	for _, s := range ss {
		var pts []string
		for i := range s.x {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.x[i]), py(s.y[i])))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s</title></circle>`+"\n",
				px(s.x[i]), py(s.y[i]), s.color, html.EscapeString(fmt.Sprintf("%s: %.1f ms at %.0f clients", s.name, s.y[i], s.x[i])))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n",
			strings.Join(pts, " "), s.color, dash(s.dash))
	}
	for i, s := range legend {
		y := padTop + 10 + i*20
		x := plotW - padRight + 15
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", x, y, x+24, y, s.color, dash(s.dash))
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", x+30, y+4, html.EscapeString(s.name))
	}
	if len(ss) == 0 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">no fan-out scenario ran</text>`+"\n", padLeft+innerW/2, padTop+innerH/2)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func dash(d string) string {
	if d == "" {
		return ""
	}
	return ` stroke-dasharray="` + d + `"`
}

// niceTicks returns 0 and 4–6 round steps up to at least max.
func niceTicks(maxV float64) []float64 {
	if maxV <= 0 {
		maxV = 1
	}
	raw := maxV / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ticks []float64
	for t := 0.0; ; t += step {
		ticks = append(ticks, t)
		if t >= maxV {
			return ticks
		}
	}
}

func tickLabel(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", v)
}
