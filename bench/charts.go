package main

import (
	"encoding/json"
	"fmt"
	"image/color"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The charts, drawn from the results (the JSON) into PNG files next to it.
const (
	singleChangeChart = "single-change.png"
	dataPlaneChart    = "data-plane.png"
)

// chartDPI makes the PNGs sharp on a screen of high density.
const chartDPI = 150

// drawCharts draws the charts of res into dir and returns their paths:
// the single change's p50 against the number of routes (log-log) for every
// system, with nginx's floor under each nginx-based one, and the data
// plane's requests/s and p99 for each config. A chart with nothing to show
// is not drawn.
func drawCharts(res *Results, dir string) ([]string, error) {
	var out []string
	if p := singleChangePlot(res); p != nil {
		path := filepath.Join(dir, singleChangeChart)
		if err := savePNG(path, 16*vg.Centimeter, 10*vg.Centimeter, [][]*plot.Plot{{p}}); err != nil {
			return nil, err
		}
		out = append(out, path)
	}
	if rps, p99 := dataPlanePlots(res.DataPlane); rps != nil {
		path := filepath.Join(dir, dataPlaneChart)
		if err := savePNG(path, 20*vg.Centimeter, 8*vg.Centimeter, [][]*plot.Plot{{rps, p99}}); err != nil {
			return nil, err
		}
		out = append(out, path)
	}
	return out, nil
}

// singleChangePlot is the single change's p50 against the number of
// routes, a line per system, and nginx's floor (dashed, in the system's
// colour) under each system that has one.
func singleChangePlot(res *Results) *plot.Plot {
	p := plot.New()
	p.Title.Text = "A new Service: created → first correct answer (p50)"
	p.X.Label.Text = "routes in the cluster"
	p.Y.Label.Text = "ms"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left, p.Legend.XOffs = true, true, vg.Millimeter*2
	p.Add(plotter.NewGrid())
	highest := 0.0
	for _, name := range systemNames(res) {
		r := res.Results[name]
		c, shape := systemStyle(name)
		if pts := latencyPoints(r.SingleChangeMS); len(pts) > 0 {
			l, s, err := plotter.NewLinePoints(pts)
			if err != nil {
				continue
			}
			l.Color, s.Color, s.Shape, l.Width = c, c, shape, vg.Points(1.5)
			p.Add(l, s)
			p.Legend.Add(chartLabel(res, name), l, s)
			for _, pt := range pts {
				highest = max(highest, pt.Y)
			}
		}
		if pts := latencyPoints(r.NginxFloorMS); len(pts) > 0 {
			l, err := plotter.NewLine(pts)
			if err != nil {
				continue
			}
			l.Color, l.Dashes = c, []vg.Length{vg.Points(4), vg.Points(3)}
			p.Add(l)
			p.Legend.Add("nginx floor under "+name, l)
		}
	}
	if highest == 0 {
		return nil
	}
	// Room above the lines for the legend.
	p.Y.Max = highest * 30
	return p
}

// systemStyle is a system's colour and marker on the charts, the same in
// each: kube-nginx-sync's shapes in reds, Traefik green, the baseline
// blue, nginx by hand grey.
func systemStyle(name string) (color.Color, draw.GlyphDrawer) {
	switch name {
	case ours, dpUpstream:
		return color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, draw.CircleGlyph{}
	case oursName(dpLua), dpLua:
		return color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, draw.SquareGlyph{}
	case oursName(dpFlat), dpFlat:
		return color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff}, draw.PyramidGlyph{}
	case traefikName:
		return color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, draw.RingGlyph{}
	case baseline:
		return color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, draw.BoxGlyph{}
	case dpReference:
		return color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}, draw.CrossGlyph{}
	}
	return plotutil.Color(5), draw.PlusGlyph{}
}

// latencyPoints are the p50s of a map by number of routes, in the order
// of the numbers.
func latencyPoints(m map[string]*Latency) plotter.XYs {
	var pts plotter.XYs
	for _, k := range slices.Sorted(maps.Keys(m)) {
		n, err := strconv.Atoi(k)
		if err != nil || m[k] == nil || m[k].P50 <= 0 {
			continue
		}
		pts = append(pts, plotter.XY{X: float64(n), Y: m[k].P50})
	}
	slices.SortFunc(pts, func(a, b plotter.XY) int { return int(a.X - b.X) })
	return pts
}

// dataPlanePlots are the data plane's requests/s and p99, a horizontal bar
// per config.
func dataPlanePlots(dp map[string]*DataPlaneResult) (rps, p99 *plot.Plot) {
	// The first config on top.
	var names []string
	for _, n := range slices.Backward(dpConfigs) {
		if dp[n] != nil {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	bars := func(title, unit string, value func(*DataPlaneResult) float64, format string) *plot.Plot {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = unit
		p.X.Min = 0
		p.X.Tick.Marker = plainTicks{}
		var vs plotter.Values
		var labels []string
		for _, n := range names {
			vs = append(vs, value(dp[n]))
			labels = append(labels, fmt.Sprintf(format, value(dp[n])))
		}
		// A bar chart per config, for its colour: its value at its
		// place, 0 at the others'.
		for i, n := range names {
			one := make(plotter.Values, len(vs))
			one[i] = vs[i]
			b, err := plotter.NewBarChart(one, vg.Points(14))
			if err != nil {
				return p
			}
			b.Horizontal, b.LineStyle.Width = true, 0
			b.Color, _ = systemStyle(n)
			p.Add(b)
		}
		// The values at the bars' ends.
		var xys plotter.XYs
		for i, v := range vs {
			xys = append(xys, plotter.XY{X: v, Y: float64(i)})
		}
		if l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels}); err == nil {
			l.Offset = vg.Point{X: vg.Points(3), Y: -vg.Points(4)}
			p.Add(l)
		}
		// Room for the labels.
		p.X.Max = slices.Max(vs) * 1.35
		p.NominalY(dpLabels(names)...)
		return p
	}
	rps = bars("data plane: requests/s (higher is better)", "requests/s", func(r *DataPlaneResult) float64 { return r.RequestsPerSecond }, "%.0f")
	p99 = bars("data plane: p99 (lower is better)", "ms", func(r *DataPlaneResult) float64 { return r.P99MS }, "%g")
	// One set of names, on the left chart.
	p99.HideY()
	return rps, p99
}

// dpLabels names the data plane's configs on a chart and in the summary.
func dpLabels(names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, map[string]string{dpUpstream: "kube-nginx-sync (upstream)", dpFlat: "kube-nginx-sync (flat)",
			dpLua: "kube-nginx-sync (lua)", dpReference: "nginx by hand", traefikName: "Traefik"}[n])
	}
	return out
}

// plainTicks are gonum's default ticks labelled without decimals that say
// nothing ("25000", not "25000.00").
type plainTicks struct{}

func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'f', -1, 64)
		}
	}
	return ticks
}

// chartLabel names a system on a chart.
func chartLabel(res *Results, name string) string {
	if name == traefikName {
		if v := res.Versions[traefikName]; v != "" {
			return "Traefik " + v
		}
		return "Traefik"
	}
	return name
}

// savePNG draws the plots in a grid of tiles into a PNG at path.
func savePNG(path string, w, h vg.Length, plots [][]*plot.Plot) error {
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(chartDPI))
	dc := draw.New(img)
	t := draw.Tiles{Rows: len(plots), Cols: len(plots[0]), PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(plots, t, dc)
	for j := range plots {
		for i := range plots[j] {
			plots[j][i].Draw(canvases[j][i])
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("chart %s: %w", path, err)
	}
	return f.Close()
}

// redraw reads the JSON of an earlier run, draws its charts next to it and
// prints its tables and summary, as at the end of a run.
func redraw(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	res := &Results{}
	if err := json.Unmarshal(data, res); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return report(res, path, resultSizes(res))
}

// resultSizes are the numbers of routes that res has single changes at.
func resultSizes(res *Results) []int {
	var sizes []int
	for _, r := range res.Results {
		for k := range r.SingleChangeMS {
			if n, err := strconv.Atoi(k); err == nil && !slices.Contains(sizes, n) {
				sizes = append(sizes, n)
			}
		}
	}
	slices.Sort(sizes)
	return sizes
}
