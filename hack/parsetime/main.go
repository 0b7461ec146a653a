// Command parsetime measures how long `nginx -t` takes to parse the config
// of each built-in shape at several numbers of routes (Services of 3
// endpoints each, testbed.Cluster), and how much memory it takes, and
// prints a Markdown table: the figures of docs/data-plane.md.
//
//	go run ./hack/parsetime [-sizes 10,100,1000,5000,10000] [-runs 5]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

func main() {
	sizes := flag.String("sizes", "10,100,1000,5000,10000", "numbers of routes")
	runs := flag.Int("runs", 5, "nginx -t runs per figure (the median is shown)")
	nginxBin := flag.String("nginx", "nginx", "nginx binary")
	flag.Parse()
	if err := run(*sizes, *runs, *nginxBin); err != nil {
		fmt.Fprintln(os.Stderr, "parsetime:", err)
		os.Exit(1)
	}
}

func run(sizeList string, runs int, nginxBin string) error {
	dir, err := os.MkdirTemp("", "parsetime-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	shapes := []nginxconf.Shape{nginxconf.ShapeUpstream, nginxconf.ShapeFlat}
	if nginx.LuaModules() != nil {
		shapes = append(shapes, nginxconf.ShapeLua)
	}
	fmt.Printf("| routes | %s |\n|---|%s\n", strings.Join(headers(shapes), " | "), strings.Repeat("---|", 2*len(shapes)))
	for _, f := range strings.Split(sizeList, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			return fmt.Errorf("bad size %q", f)
		}
		services, slices := testbed.Cluster(n, 3)
		res := model.Build(services, slices, model.Options{})
		var cells []string
		for _, shape := range shapes {
			d, rss, err := measure(dir, nginxBin, shape, res, runs)
			if err != nil {
				return err
			}
			cells = append(cells, fmtDuration(d), fmt.Sprintf("%.0f MB", rss))
		}
		fmt.Printf("| %d | %s |\n", n, strings.Join(cells, " | "))
	}
	return nil
}

func headers(shapes []nginxconf.Shape) []string {
	var out []string
	for _, s := range shapes {
		out = append(out, fmt.Sprintf("`%s`: nginx -t", s), fmt.Sprintf("`%s`: max RSS", s))
	}
	return out
}

// measure renders res in shape into a conf.d of its own and returns the
// median time of runs `nginx -t` and their largest maximum RSS.
func measure(dir, nginxBin string, shape nginxconf.Shape, res model.Result, runs int) (time.Duration, float64, error) {
	prefix := filepath.Join(dir, string(shape))
	confDir := filepath.Join(prefix, "conf.d")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return 0, 0, err
	}
	r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 8080, HTTPAddresses: []string{"127.0.0.1"}, StatusPort: 8099, Shape: shape,
		TableFile: filepath.Join(confDir, luaplane.FileName)})
	if err != nil {
		return 0, 0, err
	}
	data, err := r.Render(res.Config, res.Services)
	if err != nil {
		return 0, 0, err
	}
	if err := os.WriteFile(filepath.Join(confDir, "default.conf"), data, 0o644); err != nil {
		return 0, 0, err
	}
	mainConf, err := testbed.MainConfig{Prefix: prefix, ConfDir: confDir, Workers: 2, Modules: modules(shape)}.Write()
	if err != nil {
		return 0, 0, err
	}
	var times []time.Duration
	var rss float64
	for range runs {
		cmd := exec.Command(nginxBin, "-p", prefix+"/", "-c", mainConf, "-t", "-q")
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, 0, fmt.Errorf("%s: nginx -t: %v: %s", shape, err, out)
		}
		times = append(times, time.Since(start))
		if u, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = max(rss, float64(u.Maxrss)/1024) // Maxrss is in KiB
		}
	}
	slices.Sort(times)
	return times[len(times)/2], rss, nil
}

// modules are the dynamic modules that shape needs.
func modules(shape nginxconf.Shape) []string {
	if shape == nginxconf.ShapeLua {
		return nginx.LuaModules()
	}
	return nil
}

func fmtDuration(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}
