package nginx

import (
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/procfs"
)

// proc is what /proc says of one process.
type proc struct {
	pid     int
	ppid    int
	state   byte
	start   uint64 // clock ticks after boot
	cmdline string
}

// children lists the processes whose parent is ppid.
func children(ppid int) ([]proc, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	return childrenIn(fs, ppid)
}

func childrenIn(fs procfs.FS, ppid int) ([]proc, error) {
	all, err := fs.AllProcs()
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	sort.Sort(all) // by PID
	var out []proc
	for _, p := range all {
		stat, err := p.Stat()
		if err != nil || stat.PPID != ppid {
			continue // gone meanwhile, or not a child
		}
		out = append(out, newProc(p, stat))
	}
	return out, nil
}

func newProc(p procfs.Proc, stat procfs.ProcStat) proc {
	// The command line's arguments are NUL-separated; nginx rewrites its
	// own (to "nginx: worker process" and so on), padded with NULs.
	args, _ := p.CmdLine()
	return proc{
		pid:     p.PID,
		ppid:    stat.PPID,
		state:   stat.State[0], // Stat fails on an empty state
		start:   stat.Starttime,
		cmdline: strings.TrimSpace(strings.Join(args, " ")),
	}
}

// residentBytes returns a process's resident set size.
func residentBytes(pid int) int64 {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0
	}
	return residentBytesIn(fs, pid)
}

func residentBytesIn(fs procfs.FS, pid int) int64 {
	p, err := fs.Proc(pid)
	if err != nil {
		return 0
	}
	statm, err := p.Statm()
	if err != nil {
		return 0
	}
	return int64(statm.ResidentBytes())
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	fs, err := procfs.NewDefaultFS()
	return err == nil && aliveIn(fs, pid)
}

func aliveIn(fs procfs.FS, pid int) bool {
	p, err := fs.Proc(pid)
	if err != nil {
		return false
	}
	stat, err := p.Stat()
	return err == nil && stat.State[0] != 'Z'
}
