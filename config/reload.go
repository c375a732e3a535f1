package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Trigger says what started a reload.
type Trigger string

// Triggers of a reload.
const (
	TriggerAPI    Trigger = "api"    // the ReloadConfig RPC (switchyard reload)
	TriggerSignal Trigger = "signal" // SIGHUP
	TriggerWatch  Trigger = "watch"  // the file changed (watch: true)
)

// Reload is one reload of the configuration: applied, refused or tried (a
// dry run).
type Reload struct {
	Time    time.Time // when it started
	Trigger Trigger
	// By is who asked: the API caller's identity, "SIGHUP" or "file change".
	By     string
	Source string // the configuration file
	// Hash is the new configuration's (Config.Hash), PreviousHash the one it
	// replaces; for a refused reload, Hash is empty.
	Hash, PreviousHash string
	// Applied: the configuration is in force. False for a refused one (see
	// Errors) and a dry run.
	Applied bool
	DryRun  bool
	Diff    Diff
	// Errors are every problem of a refused configuration, each as
	// "file:line: field: message"; nothing was changed.
	Errors []string
	// Failed are the parts of an applied configuration that could not be
	// applied (a device that would not stop); the rest is in force.
	Failed   []string
	Warnings []string
	Took     time.Duration
}

// Summary describes the reload in one line, as logged and archived:
// "applied 3f2a9c1b0d4e: 2 added, 1 removed, 90 unchanged", "refused: 3
// problems, nothing changed", "dry run ...".
func (r *Reload) Summary() string {
	switch {
	case len(r.Errors) > 0:
		n := "1 problem"
		if len(r.Errors) > 1 {
			n = fmt.Sprintf("%d problems", len(r.Errors))
		}
		return "refused: " + n + ", nothing changed"
	case r.DryRun:
		return "dry run " + ShortHash(r.Hash) + ": " + r.Diff.Summary()
	}
	s := "applied " + ShortHash(r.Hash) + ": " + r.Diff.Summary()
	if len(r.Failed) > 0 {
		s += fmt.Sprintf("; %d failed", len(r.Failed))
	}
	return s
}

// ShortHash is the first 12 hex digits of a hash, as shown to people.
func ShortHash(h string) string { return h[:min(12, len(h))] }

// ErrInvalid marks a configuration a reload refused; the error is an
// *InvalidError holding every problem.
var ErrInvalid = errors.New("invalid configuration")

// InvalidError is a configuration a reload refused: every problem, each as
// "file:line: field: message". Nothing was changed.
type InvalidError struct {
	Source   string
	Problems []string
}

// Error returns the problems, one per line, after a line naming the file.
func (e *InvalidError) Error() string {
	return fmt.Sprintf("%s: configuration refused, nothing changed (%d problems):\n%s", e.Source, len(e.Problems), strings.Join(e.Problems, "\n"))
}

// Is reports ErrInvalid.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// ErrorMetadata names the file and counts the problems (for the API's error
// details).
func (e *InvalidError) ErrorMetadata() map[string]string {
	return map[string]string{"source": e.Source, "problems": fmt.Sprint(len(e.Problems))}
}

// Active is the configuration in force and how it came to be.
type Active struct {
	Config *Config // shared: do not modify
	Source string
	// LoadedAt is when it was loaded (at start or by the last reload that
	// applied), By and Trigger who and what loaded it ("" at start).
	LoadedAt time.Time
	By       string
	Trigger  Trigger
	// NeedsRestart are the settings the file changed that wait for a
	// restart (see Diff.NeedsRestart).
	NeedsRestart []string
	// Last is the last reload tried (applied or refused), nil if none.
	Last *Reload
}

// Applier makes a checked configuration the running one: running is the one
// in force, next the new one with the settings that need a restart already
// set back to running's, r the reload (who asked, r.Diff their difference).
// Its error says what could not be applied; what could, is.
type Applier func(running, next *Config, r *Reload) error

// ReloaderOptions configures a Reloader. The zero value works.
type ReloaderOptions struct {
	// Load reads and checks the file. Default Load; the demo adds its
	// command-line settings on top.
	Load func(path string) (*Config, error)
	// Record receives every reload applied or refused (not dry runs), after
	// it was logged: the archive and the event streams.
	Record func(Reload)
	// Signals trigger a reload each (SIGHUP). Default none.
	Signals <-chan os.Signal
	// WatchInterval is how often the files are looked at when the
	// configuration says watch: true. A change is reloaded once the files
	// stayed the same for one more interval (not half-written). Default
	// 250ms.
	WatchInterval time.Duration
	Logger        *slog.Logger
	// Now is the clock of the reload times. Default time.Now.
	Now func() time.Time
}

// Reloader keeps the running configuration and replaces it, as a diff, when
// asked (Reload), on a signal and when its files change (Serve). One reload
// runs at a time; it is safe for concurrent use.
type Reloader struct {
	path  string
	apply Applier
	opts  ReloaderOptions

	run sync.Mutex // held while a reload runs
	// watch is the files' stamps; owned by Serve (taken at NewReloader, so a
	// change made before Serve starts is not missed).
	watch fileWatch

	mu     sync.Mutex
	active Active
}

// NewReloader returns a Reloader of the file path whose configuration
// running is in force (loaded at start).
func NewReloader(path string, running *Config, apply Applier, opts ReloaderOptions) *Reloader {
	if opts.Load == nil {
		opts.Load = Load
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.WatchInterval <= 0 {
		opts.WatchInterval = 250 * time.Millisecond
	}
	r := &Reloader{path: path, apply: apply, opts: opts,
		active: Active{Config: running, Source: path, LoadedAt: opts.Now()}}
	r.watch.reset(running.Files)
	return r
}

// Active returns the configuration in force.
func (r *Reloader) Active() Active {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.active
}

// Reload reads the file again, checks it in full and, if it has no problem,
// applies it as a diff against the running configuration; with dryRun it only
// says what would change. A configuration with problems changes nothing: the
// error is an *InvalidError listing every problem (also logged). Otherwise
// the error, if any, says what could not be applied. by names who asked.
func (r *Reloader) Reload(trigger Trigger, by string, dryRun bool) (Reload, error) {
	r.run.Lock()
	defer r.run.Unlock()
	running := r.Active().Config
	rec := Reload{Time: r.opts.Now(), Trigger: trigger, By: by, Source: r.path, PreviousHash: running.Hash, DryRun: dryRun}
	next, err := r.opts.Load(r.path)
	if err != nil {
		rec.Errors = problems(err)
		rec.Took = r.opts.Now().Sub(rec.Time)
		if !dryRun {
			r.finish(&rec)
		}
		return rec, &InvalidError{Source: r.path, Problems: rec.Errors}
	}
	rec.Hash, rec.Warnings = next.Hash, next.Warnings
	rec.Diff = running.Compare(next)
	if dryRun {
		rec.Took = r.opts.Now().Sub(rec.Time)
		return rec, nil
	}
	next.KeepRestartOnly(running)
	err = r.apply(running, next, &rec)
	if err != nil {
		rec.Failed = problems(err)
	}
	rec.Applied = true
	rec.Took = r.opts.Now().Sub(rec.Time)
	r.mu.Lock()
	r.active.Config, r.active.LoadedAt, r.active.By, r.active.Trigger = next, rec.Time, by, trigger
	r.active.NeedsRestart = rec.Diff.NeedsRestart
	r.mu.Unlock()
	r.finish(&rec)
	return rec, err
}

// finish logs a reload, keeps it as the last one and records it.
func (r *Reloader) finish(rec *Reload) {
	log := r.opts.Logger.With("by", rec.By, "trigger", string(rec.Trigger), "file", rec.Source)
	if len(rec.Errors) > 0 {
		log.Error("configuration refused; nothing changed", "problems", len(rec.Errors))
		for _, p := range rec.Errors {
			log.Error("configuration refused: " + p)
		}
	} else {
		log.Info("configuration reloaded", "hash", ShortHash(rec.Hash), "summary", rec.Diff.Summary(), "took", rec.Took)
		for _, w := range rec.Warnings {
			log.Warn("configuration: " + w)
		}
		for _, n := range rec.Diff.NeedsRestart {
			log.Warn("configuration: needs a restart, left as it was: " + n)
		}
		for _, f := range rec.Failed {
			log.Error("configuration reload: not applied: " + f)
		}
	}
	r.mu.Lock()
	last := *rec
	r.active.Last = &last
	r.mu.Unlock()
	if r.opts.Record != nil {
		r.opts.Record(*rec)
	}
}

// problems splits an error into its lines (Parse joins one per problem).
func problems(err error) []string {
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// Serve reloads on every signal from Options.Signals and, while the
// configuration in force says watch: true, when one of its files changes,
// until ctx ends. It returns nil.
func (r *Reloader) Serve(ctx context.Context) error {
	tick := time.NewTicker(r.opts.WatchInterval)
	defer tick.Stop()
	w := &r.watch
	for {
		select {
		case <-ctx.Done():
			return nil
		case sig := <-r.opts.Signals:
			_, _ = r.Reload(TriggerSignal, signalName(sig), false)
			w.follow(r.Active().Config.Files)
		case <-tick.C:
			active := r.Active().Config
			if !active.Watch {
				w.reset(active.Files)
				continue
			}
			// The files as they were when the change settled are the ones seen:
			// a refused file is not tried again until it changes, and a change
			// made while this one is reloaded is seen at the next look.
			if !w.changed() {
				continue
			}
			rec, _ := r.Reload(TriggerWatch, "file change", true)
			if len(rec.Errors) == 0 && rec.Hash == active.Hash {
				continue // touched, not changed
			}
			_, _ = r.Reload(TriggerWatch, "file change", false)
			w.follow(r.Active().Config.Files)
		}
	}
}

func signalName(s os.Signal) string {
	if s == syscall.SIGHUP {
		return "SIGHUP"
	}
	return s.String()
}

// fileWatch tells when files changed and then stayed the same for one look
// (so a file being written is not read half-way).
type fileWatch struct {
	files   []string
	seen    []fileStamp // as last reloaded
	pending []fileStamp // a change seen, waiting to settle; nil if none
}

// fileStamp tells whether a file changed: size, modification time, inode
// (an editor that saves by renaming gives a new inode).
type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
	err   bool
}

func stamp(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{err: true}
	}
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

func stamps(files []string) []fileStamp {
	out := make([]fileStamp, len(files))
	for i, f := range files {
		out[i] = stamp(f)
	}
	return out
}

// reset takes the files as they are now as the ones in force.
func (w *fileWatch) reset(files []string) {
	w.files = files
	w.seen = stamps(files)
	w.pending = nil
}

// follow watches files from now on: a file watched before keeps the stamp it
// was seen with, a new one is seen as it is now.
func (w *fileWatch) follow(files []string) {
	if slices.Equal(files, w.files) {
		return
	}
	seen := stamps(files)
	for i, f := range files {
		if j := slices.Index(w.files, f); j >= 0 {
			seen[i] = w.seen[j]
		}
	}
	w.files, w.seen, w.pending = files, seen, nil
}

// changed reports whether the files differ from when they were last seen and
// have not changed since the previous look.
func (w *fileWatch) changed() bool {
	now := stamps(w.files)
	if equalStamps(now, w.seen) {
		w.pending = nil
		return false
	}
	if w.pending != nil && equalStamps(now, w.pending) {
		w.pending = nil
		w.seen = now
		return true
	}
	w.pending = now
	return false
}

func equalStamps(a, b []fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
