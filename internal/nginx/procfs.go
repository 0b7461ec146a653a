package nginx

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, err := readProc(pid)
		if err != nil || p.ppid != ppid {
			continue // gone meanwhile, or not a child
		}
		out = append(out, p)
	}
	return out, nil
}

func readProc(pid int) (proc, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return proc{}, err
	}
	// The command name is in parentheses and may hold spaces and ")".
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return proc{}, fmt.Errorf("malformed %s/stat", dir)
	}
	fields := strings.Fields(string(stat[i+1:]))
	// fields[0] is field 3 (state); ppid is field 4; starttime field 22.
	if len(fields) < 20 {
		return proc{}, fmt.Errorf("malformed %s/stat", dir)
	}
	p := proc{pid: pid, state: fields[0][0]}
	if p.ppid, err = strconv.Atoi(fields[1]); err != nil {
		return proc{}, err
	}
	if p.start, err = strconv.ParseUint(fields[19], 10, 64); err != nil {
		return proc{}, err
	}
	cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
	p.cmdline = strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
	return p, nil
}

// residentBytes returns a process's resident set size.
func residentBytes(pid int) int64 {
	statm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "statm"))
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(statm))
	if len(fields) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(fields[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	p, err := readProc(pid)
	return err == nil && p.state != 'Z'
}
