package nginx

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Supervisor runs nginx as a child process in the foreground.
type Supervisor struct {
	bin  string
	args []string // the user's arguments, without ours

	cmd  *exec.Cmd
	done chan struct{}
	err  error // of cmd.Wait, set before done closes

	mu sync.Mutex
	// problems holds recent [emerg] and [alert] lines nginx wrote to
	// stderr, to explain a refused reload.
	problems []logLine
}

type logLine struct {
	at   time.Time
	text string
}

const maxProblems = 50

// StartOptions configure StartNginx.
type StartOptions struct {
	// Bin is the nginx binary.
	Bin string
	// Args are passed to nginx (such as -p PREFIX -c FILE). The supervisor
	// adds -g "daemon off;" unless Args already set daemon.
	Args []string
	// Output receives nginx's stdout and stderr, line by line.
	Output io.Writer
}

// StartNginx starts nginx and waits until its master has started its
// workers, or fails with nginx's own message if it exits first.
func StartNginx(ctx context.Context, opts StartOptions) (*Supervisor, error) {
	s := &Supervisor{bin: opts.Bin, args: opts.Args, done: make(chan struct{})}
	args := slices.Clone(opts.Args)
	if !setsDaemon(args) {
		args = append(args, "-g", "daemon off;")
	}
	s.cmd = exec.Command(opts.Bin, args...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group: a Ctrl-C in a terminal reaches only us,
		// and we stop nginx gracefully.
		Setpgid: true,
		// If we die, nginx's master is told to stop too (and stops its
		// workers): never an orphaned nginx.
		Pdeathsig: syscall.SIGTERM,
	}
	// An os.Pipe, not an io.Writer: exec would copy from its own pipe and
	// Wait for the copy, which ends only when every worker holding the
	// pipe has exited, so a killed master would not be noticed.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	s.cmd.Stdout, s.cmd.Stderr = pw, pw
	err = s.cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	track(s.cmd.Process.Pid)
	go func() {
		s.copyOutput(pr, opts.Output)
		pr.Close()
	}()
	go func() {
		err := s.cmd.Wait()
		untrack(s.cmd.Process.Pid)
		// A master that was killed leaves its workers behind; they are in
		// its process group, which holds nothing else.
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		s.err = err
		close(s.done)
	}()

	err = wait.PollUntilContextCancel(ctx, 10*time.Millisecond, false, func(context.Context) (bool, error) {
		select {
		case <-s.done:
			return false, fmt.Errorf("nginx exited at start (%v): %s", s.err, s.recentProblems(time.Time{}))
		default:
		}
		ws, err := s.Workers()
		return err == nil && len(ws) > 0, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			s.Stop(5 * time.Second)
			return nil, ctx.Err()
		}
		return nil, err
	}
	return s, nil
}

// setsDaemon reports whether nginx arguments already set the daemon
// directive with -g.
func setsDaemon(args []string) bool {
	for i, a := range args {
		if a == "-g" && i+1 < len(args) && strings.Contains(args[i+1], "daemon") {
			return true
		}
	}
	return false
}

func (s *Supervisor) copyOutput(r io.Reader, out io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		if out != nil {
			out.Write(append(line, '\n'))
		}
		if bytes.Contains(line, []byte("[emerg]")) || bytes.Contains(line, []byte("[alert]")) {
			s.mu.Lock()
			s.problems = append(s.problems, logLine{at: time.Now(), text: string(line)})
			if len(s.problems) > maxProblems {
				s.problems = s.problems[len(s.problems)-maxProblems:]
			}
			s.mu.Unlock()
		}
	}
	io.Copy(io.Discard, r) // a line too long for the scanner: keep nginx unblocked
}

// recentProblems joins the [emerg] and [alert] lines logged after since.
func (s *Supervisor) recentProblems(since time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lines []string
	for _, p := range s.problems {
		if !p.at.Before(since) {
			lines = append(lines, p.text)
		}
	}
	return strings.Join(lines, "\n")
}

// waitQuiet waits until nginx has logged no [emerg] or [alert] line for
// quiet, or for at most limit: a master that failed to load a config may
// go on logging for a while (it tries a busy port five times, 500 ms
// apart), and those lines must not be taken for the next reload's.
func (s *Supervisor) waitQuiet(quiet, limit time.Duration) {
	_ = wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, limit, true, func(context.Context) (bool, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		var last time.Time
		if n := len(s.problems); n > 0 {
			last = s.problems[n-1].at
		}
		return time.Since(last) >= quiet, nil
	})
}

// PID is the master's process ID.
func (s *Supervisor) PID() int { return s.cmd.Process.Pid }

// Done is closed when nginx has exited.
func (s *Supervisor) Done() <-chan struct{} { return s.done }

// ExitError is how nginx exited (after Done): nil for status 0.
func (s *Supervisor) ExitError() error { return s.err }

// ExitCode is nginx's exit status after Done: its code, or 128 plus the
// signal that ended it.
func (s *Supervisor) ExitCode() int {
	var exit *exec.ExitError
	if !errors.As(s.err, &exit) {
		return 0
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return exit.ExitCode()
}

// signal sends sig to the master.
func (s *Supervisor) signal(sig syscall.Signal) error {
	select {
	case <-s.done:
		return fmt.Errorf("nginx has exited: %v", s.err)
	default:
	}
	return s.cmd.Process.Signal(sig)
}

// Validate runs `nginx -t` with the supervisor's arguments, so it checks
// the whole config that a reload would load.
func (s *Supervisor) Validate(ctx context.Context) error {
	args := append([]string{"-t", "-q"}, s.args...)
	if !setsDaemon(args) {
		args = append(args, "-g", "daemon off;")
	}
	cmd := exec.CommandContext(ctx, s.bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("nginx -t: %w", err)
	}
	track(cmd.Process.Pid)
	err := cmd.Wait()
	untrack(cmd.Process.Pid)
	if err != nil {
		msg := strings.TrimSpace(out.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("nginx -t: %s", msg)
	}
	return nil
}

// Stop asks nginx to finish gracefully (SIGQUIT: workers finish their
// requests), then, after timeout, to stop at once (SIGTERM), and kills it
// 5 s later. It returns when nginx has exited.
func (s *Supervisor) Stop(timeout time.Duration) {
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGQUIT, timeout}, {syscall.SIGTERM, 5 * time.Second}, {syscall.SIGKILL, time.Minute}} {
		if s.signal(step.sig) != nil {
			break
		}
		select {
		case <-s.done:
			return
		case <-time.After(step.wait):
		}
	}
	<-s.done
}

const sighup = syscall.SIGHUP
