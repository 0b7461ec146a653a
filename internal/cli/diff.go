package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/controller"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxsyntax"
)

// ExitDiffers is diff's exit code when the live config would change.
const ExitDiffers = 1

// diffOptions are diff's flags.
type diffOptions struct {
	gf  generatorFlags
	src sourceFlags
}

func diffCommand(e env) *cobra.Command {
	var o diffOptions
	cmd := &cobra.Command{
		Use:   "diff",
		Short: "Show what a render now would change in the live config file",
		Long: "diff renders the config as render would and compares it, entry by entry, with the file --output\n" +
			"names (and, with --shape lua, the routes and endpoints with the table file beside it). It exits 0\n" +
			"when they are the same and 1 when a file would change.",
		Example:           `  kube-nginx-sync diff --output /etc/nginx/conf.d/default.conf`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              running(func(ctx context.Context, _ []string) error { return o.run(ctx, e) }),
	}
	o.gf.register(cmd)
	o.src.register(cmd, 30*time.Second)
	return cmd
}

func (o *diffOptions) run(ctx context.Context, e env) error {
	if err := o.src.check(); err != nil {
		return err
	}
	log, cfg, err := o.gf.resolve(env{stdout: e.stdout, stderr: io.Discard})
	if err != nil {
		return err
	}
	if cfg.out.output == "-" {
		return usageError("diff compares with the file --output names")
	}
	objs, err := o.src.read(ctx, cfg, log)
	if err != nil {
		return err
	}
	pipeline := &controller.Pipeline{Model: cfg.modelOpts, Renderer: cfg.renderer}
	res, file, err := pipeline.Generate(objs)
	rendered := file.Data
	if err != nil {
		return err
	}
	live, err := os.ReadFile(cfg.out.output)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var changes []string
	if string(live) != string(rendered) {
		if changes, err = diffConfigs(live, rendered); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "--- %s%s\n+++ rendered now%s\n", cfg.out.output, versionNote(live), versionNote(rendered))
		for _, c := range changes {
			fmt.Fprintln(e.stdout, c)
		}
	}
	if cfg.tableFile != "" {
		liveTable, version, err := luaplane.Read(cfg.tableFile)
		note := " (version " + version + ")"
		if errors.Is(err, fs.ErrNotExist) {
			note = " (missing)"
		} else if err != nil {
			return fmt.Errorf("read the live table: %w", err)
		}
		if tableChanges := diffEntries(tableEntries(liveTable), tableEntries(luaplane.Build(res.Config))); len(tableChanges) > 0 {
			fmt.Fprintf(e.stdout, "--- %s%s\n+++ rendered now\n", cfg.tableFile, note)
			for _, c := range tableChanges {
				fmt.Fprintln(e.stdout, c)
			}
			changes = append(changes, tableChanges...)
		}
	}
	if len(changes) == 0 {
		fmt.Fprintf(e.stdout, "%s is up to date\n", cfg.out.output)
		return nil
	}
	return exitCodeError{code: ExitDiffers, err: fmt.Errorf("%s would change (%d entries)", cfg.out.output, len(changes))}
}

// tableEntries flattens a Lua table into named entries: each route by
// server and path ("= path" for an exact one), each Service port's
// endpoints by key.
func tableEntries(t luaplane.Table) map[string]string {
	entries := make(map[string]string, len(t.Routes)+len(t.Endpoints))
	for _, r := range t.Routes {
		v := r.Key
		if r.Strip {
			v += " (prefix stripped)"
		}
		if r.Bare {
			v += " (and the path without its final /)"
		}
		path := r.Path
		if r.Exact {
			path = "= " + path
		}
		entries["route "+r.Server+" "+path] = v
	}
	for _, e := range t.Endpoints {
		addrs := make([]string, 0, len(e.Addrs))
		for _, a := range e.Addrs {
			addrs = append(addrs, a.String())
		}
		slices.Sort(addrs)
		entries["endpoints "+e.Key] = cmp.Or(strings.Join(slices.Compact(addrs), " "), "(none)")
	}
	return entries
}

func versionNote(data []byte) string {
	if len(data) == 0 {
		return " (missing)"
	}
	line, _, _ := strings.Cut(string(data), "\n")
	if h, err := nginxconf.ParseHeader(line); err == nil {
		return " (version " + h.Version[:12] + ")"
	}
	return ""
}

// diffConfigs compares two configs entry by entry (an upstream, a server's
// own directives, a location), and lists what is added (+), removed (-)
// or changed (~).
func diffConfigs(old, new []byte) ([]string, error) {
	before, err := configEntries(old)
	if err != nil {
		return nil, fmt.Errorf("parse the live config: %w", err)
	}
	after, err := configEntries(new)
	if err != nil {
		return nil, fmt.Errorf("parse the rendered config: %w", err)
	}
	return diffEntries(before, after), nil
}

// diffEntries lists, by name, the entries added (+), removed (-) or
// changed (~) from before to after.
func diffEntries(before, after map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(after)) {
		prev, ok := before[k]
		switch {
		case !ok:
			out = append(out, "+ "+k+": "+after[k])
		case prev != after[k]:
			out = append(out, "~ "+k+": "+prev+"  =>  "+after[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[k]; !ok {
			out = append(out, "- "+k+": "+before[k])
		}
	}
	return out
}

// configEntries flattens a config into named entries: a server is named
// by its server_name (or its first listen), with "(https)" for one
// served over HTTPS.
func configEntries(data []byte) (map[string]string, error) {
	ds, err := nginxsyntax.Parse(string(data))
	if err != nil {
		return nil, err
	}
	entries := make(map[string]string)
	for _, d := range ds {
		switch {
		case d.Name == "server" && d.Block != nil:
			host := ""
			tls := false
			var own []string
			for _, c := range d.Block {
				switch {
				case c.Name == "server_name":
					host = strings.Join(c.Args, " ")
				case c.Name == "listen" && host == "":
					host = "listen " + strings.Join(c.Args, " ")
				}
				tls = tls || c.Name == "listen" && slices.Contains(c.Args, "ssl")
			}
			// A host served over HTTPS has a server block for each.
			if tls {
				host += " (https)"
			}
			for _, c := range d.Block {
				if c.Name == "location" {
					entries["server "+host+" location "+strings.Join(c.Args, " ")] = inner(c)
				} else {
					own = append(own, c.String())
				}
			}
			entries["server "+host] = strings.Join(own, " ")
		case d.Block != nil:
			entries[d.Name+" "+strings.Join(d.Args, " ")] = inner(d)
		default:
			entries[d.String()] = ""
		}
	}
	return entries, nil
}

// inner is a block's directives on one line.
func inner(d nginxsyntax.Directive) string {
	var parts []string
	for _, c := range d.Block {
		parts = append(parts, c.String())
	}
	return strings.Join(parts, " ")
}
