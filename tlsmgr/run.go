package tlsmgr

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Run reloads on the interval (Config.ReloadInterval plus up to a tenth of
// jitter) and when the files change, until ctx is done; then it returns nil.
//
// File changes are seen by watching the parent directories of every file,
// not the files themselves, so that editors' rename-on-save and
// Kubernetes-style atomic symlink swaps are caught. Events are debounced
// (Config.WatchDebounce); every event only triggers a reload, and the
// content hash decides whether anything changed. Watches of directories
// that disappear are re-added when they come back. A watcher error (an
// event queue overflow loses events) triggers a reload as an event does. If
// the watcher cannot be started, Run logs it and relies on the interval
// alone. Files replaced between New and Run, before anything watched them,
// are picked up when Run starts.
func (m *Manager) Run(ctx context.Context) error {
	w := newDirWatcher(m.watchDirs(), m.log)
	defer w.close()
	if m.changedOnDisk() {
		m.Reload(ctx)
	}

	interval := m.clock.NewTimer(m.jittered())
	defer func() { interval.Stop() }()
	var debounce, retry Timer
	var debounceC, retryC <-chan time.Time
	var burstStart time.Time // the first event of the current burst
	stop := func(t Timer) {
		if t != nil {
			t.Stop()
		}
	}
	defer func() { stop(debounce); stop(retry) }()

	scheduleRetry := func() {
		if retryC == nil && !w.complete() {
			retry = m.clock.NewTimer(4 * m.cfg.WatchDebounce)
			retryC = retry.C()
		}
	}
	// kick (re)starts the debounce timer: a reload runs once events have
	// been quiet for WatchDebounce.
	kick := func() {
		now := m.clock.Now()
		if debounceC == nil {
			burstStart = now
		} else if now.Sub(burstStart) >= maxDebounceBursts*m.cfg.WatchDebounce {
			return // a writer that never pauses must not postpone the reload forever
		}
		stop(debounce)
		debounce = m.clock.NewTimer(m.cfg.WatchDebounce)
		debounceC = debounce.C()
	}
	scheduleRetry()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-interval.C():
			m.Reload(ctx)
			interval = m.clock.NewTimer(m.jittered())
			w.ensure()
			scheduleRetry()
		case ev, ok := <-w.events():
			if !ok {
				w.disable()
				continue
			}
			w.handle(ev)
			scheduleRetry()
			kick()
		case err, ok := <-w.errors():
			if !ok {
				w.disable()
				continue
			}
			m.log.Warn("TLS file watcher error; reloads continue on the interval", slog.String("error", err.Error()))
			kick() // events may have been lost: look at the files
		case <-debounceC:
			debounce, debounceC = nil, nil
			w.ensure()
			m.Reload(ctx)
			scheduleRetry()
		case <-retryC:
			retry, retryC = nil, nil
			if w.ensure() {
				// A directory came back: its files may have too.
				m.Reload(ctx)
			}
			scheduleRetry()
		}
	}
}

// maxDebounceBursts bounds how long a burst of events may postpone a
// reload, in debounce periods.
const maxDebounceBursts = 10

func (m *Manager) jittered() time.Duration {
	d := m.cfg.ReloadInterval
	if j := int64(d / 10); j > 0 {
		d += time.Duration(rand.Int64N(j))
	}
	return d
}

// watchDirs lists the directories to watch: the parent of every file, and
// for a CA directory the directory itself.
func (m *Manager) watchDirs() []string {
	var dirs []string
	add := func(d string) {
		d = filepath.Clean(d)
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	for _, p := range m.cfg.Certs {
		add(filepath.Dir(p.Cert))
		add(filepath.Dir(p.Key))
	}
	add(filepath.Dir(m.cfg.CA))
	if m.snap.Load().ca.isDir {
		add(m.cfg.CA)
	}
	return dirs
}

// dirWatcher watches a fixed set of directories and re-adds those that
// disappeared once they exist again.
type dirWatcher struct {
	w        *fsnotify.Watcher
	log      *slog.Logger
	dirs     []string
	watching map[string]bool
}

func newDirWatcher(dirs []string, log *slog.Logger) *dirWatcher {
	d := &dirWatcher{log: log, dirs: dirs, watching: make(map[string]bool)}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("Cannot watch the TLS files; reloads run on the interval only", slog.String("error", err.Error()))
		return d
	}
	d.w = w
	d.ensure()
	return d
}

// ensure adds the watches that are missing and reports whether it added any.
func (d *dirWatcher) ensure() bool {
	if d.w == nil {
		return false
	}
	added := false
	for _, dir := range d.dirs {
		if d.watching[dir] {
			continue
		}
		if err := d.w.Add(dir); err == nil {
			d.watching[dir] = true
			added = true
		}
	}
	return added
}

// complete reports whether every directory is watched (or watching is off).
func (d *dirWatcher) complete() bool {
	if d.w == nil {
		return true
	}
	for _, dir := range d.dirs {
		if !d.watching[dir] {
			return false
		}
	}
	return true
}

// handle notes a watched directory that was removed or moved away.
func (d *dirWatcher) handle(ev fsnotify.Event) {
	if !ev.Has(fsnotify.Remove) && !ev.Has(fsnotify.Rename) {
		return
	}
	name := filepath.Clean(ev.Name)
	if d.watching[name] {
		_ = d.w.Remove(name) // gone already after a removal
		d.watching[name] = false
	}
}

func (d *dirWatcher) events() <-chan fsnotify.Event {
	if d.w == nil {
		return nil
	}
	return d.w.Events
}

func (d *dirWatcher) errors() <-chan error {
	if d.w == nil {
		return nil
	}
	return d.w.Errors
}

func (d *dirWatcher) disable() {
	d.close()
	d.w = nil
}

func (d *dirWatcher) close() {
	if d.w != nil {
		_ = d.w.Close()
	}
}
