package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat. Linux
// reports it as 100 on every architecture Go supports.
const clockTicks = 100

// maxTicks bounds one tick count so that the sum of two, as a Duration, cannot
// overflow (it is over 900 years of CPU).
const maxTicks = math.MaxInt64 / 2 / int64(time.Second/clockTicks)

// ProcStat is what the harness reads about a child process from /proc.
type ProcStat struct {
	// CPU is user plus system time the process has used since it started.
	CPU time.Duration
	// RSS is the resident set size now; PeakRSS its high-water mark (VmHWM).
	RSS, PeakRSS int64
	// Threads is the number of OS threads.
	Threads int
}

// ReadProcStat reads /proc/<pid>/stat and /proc/<pid>/status.
func ReadProcStat(pid int) (ProcStat, error) {
	var ps ProcStat
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, err
	}
	cpu, err := ParseStatCPU(stat)
	if err != nil {
		return ps, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	ps.CPU = cpu
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, err
	}
	ps.RSS, ps.PeakRSS, ps.Threads, err = ParseStatus(status)
	if err != nil {
		return ps, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return ps, nil
}

// ParseStatCPU returns utime+stime from the contents of /proc/<pid>/stat. The
// command name (field 2) may hold spaces and parentheses, so fields are counted
// from the last ')'.
func ParseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("no ')' after the command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	// After ')': state(3) ppid(4) ... utime(14) stime(15); f[0] is field 3.
	if len(f) < 13 {
		return 0, fmt.Errorf("want at least 15 fields, got %d", len(f)+2)
	}
	var ticks int64
	for _, idx := range []int{11, 12} {
		n, err := strconv.ParseInt(f[idx], 10, 64)
		if err != nil || n < 0 || n > maxTicks {
			return 0, fmt.Errorf("field %d: not a tick count: %q", idx+3, f[idx])
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / clockTicks), nil
}

// ParseStatus returns VmRSS, VmHWM (bytes) and Threads from /proc/<pid>/status.
func ParseStatus(status []byte) (rss, peak int64, threads int, err error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	seen := 0
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "VmRSS", "VmHWM":
			num := strings.TrimSuffix(val, " kB")
			n, perr := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if perr != nil {
				return 0, 0, 0, fmt.Errorf("%s: not a kB count: %q", key, val)
			}
			if key == "VmRSS" {
				rss = n * 1024
			} else {
				peak = n * 1024
			}
			seen++
		case "Threads":
			n, perr := strconv.Atoi(val)
			if perr != nil {
				return 0, 0, 0, fmt.Errorf("field Threads: not a count: %q", val)
			}
			threads = n
			seen++
		}
	}
	if seen < 3 {
		return 0, 0, 0, errors.New("missing VmRSS, VmHWM or Threads")
	}
	return rss, peak, threads, nil
}

// selfCPU returns the harness process's own user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// RaiseFileLimit raises RLIMIT_NOFILE of the harness to at least want (the soft
// and, when allowed, the hard limit). Children started afterwards inherit it. It
// returns the soft limit in force afterwards.
func RaiseFileLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	next := lim
	next.Cur = want
	if next.Max < want {
		next.Max = want
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err != nil {
		// Not allowed to raise the hard limit: take what it allows.
		next = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err2 := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err2 != nil {
			return lim.Cur, err
		}
		return next.Cur, fmt.Errorf("open-file limit: wanted %d, hard limit is %d: %w", want, lim.Max, err)
	}
	return next.Cur, nil
}

// child is a process the harness started: the simulator or the server.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu     sync.Mutex
	stderr bytes.Buffer // the last lines of stderr, for error messages
	log    *os.File     // all of stderr, when kept (Options.LogDir)
}

// startChild runs the harness's own binary with args. stdout goes to the returned
// reader (nil if not wanted); the end of stderr is kept for diagnosis, and all of
// it in the file logPath unless that is "".
func startChild(name string, bin string, args []string, wantStdout bool, logPath string) (*child, io.Reader, error) {
	c := &child{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	c.cmd.Stderr = (*tailWriter)(c)
	if logPath != "" {
		f, err := os.Create(logPath)
		if err != nil {
			return nil, nil, err
		}
		c.log = f
	}
	var out io.Reader
	if wantStdout {
		r, err := c.cmd.StdoutPipe()
		if err != nil {
			return nil, nil, err
		}
		out = r
	}
	if err := c.cmd.Start(); err != nil {
		if c.log != nil {
			_ = c.log.Close()
		}
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		if c.log != nil {
			c.mu.Lock()
			_ = c.log.Close()
			c.mu.Unlock()
		}
		close(c.done)
	}()
	return c, out, nil
}

// tailWriter keeps the last 8 KB written to a child's stderr (and all of it in
// the child's log file, if it has one).
type tailWriter child

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.log != nil {
		_, _ = t.log.Write(p)
	}
	t.stderr.Write(p)
	if t.stderr.Len() > 16<<10 {
		b := append([]byte(nil), t.stderr.Bytes()[t.stderr.Len()-8<<10:]...)
		t.stderr.Reset()
		t.stderr.Write(b)
	}
	return len(p), nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// tail returns the last lines the child wrote to stderr.
func (c *child) tail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := strings.TrimSpace(c.stderr.String())
	if lines := strings.Split(s, "\n"); len(lines) > 8 {
		s = strings.Join(lines[len(lines)-8:], "\n")
	}
	return s
}

// exited reports an error if the child has already ended.
func (c *child) exited() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited early (%v): %s", c.name, c.err, c.tail())
	default:
		return nil
	}
}

// stop sends SIGTERM and waits up to grace, then kills. It is idempotent.
func (c *child) stop(grace time.Duration) error {
	select {
	case <-c.done:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
		return nil
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", c.name, grace)
	}
}

// waitFor polls cond every 50 ms until it returns nil, ctx ends or limit passes.
func waitFor(ctx context.Context, limit time.Duration, what string, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = cond(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}
