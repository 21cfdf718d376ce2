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
// File changes are seen by watching directories, not the files themselves,
// so that editors' rename-on-save and atomic symlink swaps are caught: the
// directory that holds each file at the end of its symlink chain, and every
// directory that holds a link on the way (see watchDirs). The chains are
// resolved again after every reload, so a repointed link moves the watch
// along. Events are debounced (Config.WatchDebounce); every event only
// triggers a reload, and the content hash decides whether anything
// changed. Watches of directories that disappear are re-added when they
// come back, and a directory newly watched triggers a reload, for what
// changed in it before the watch. A watcher error (an event queue overflow
// loses events) triggers a reload as an event does. If the watcher cannot
// be started, Run logs it and relies on the interval alone. Files replaced
// between New and Run, before anything watched them, are picked up when Run
// starts.
func (m *Manager) Run(ctx context.Context) error {
	w := newDirWatcher(m.watchDirs(), m.log)
	defer w.close()
	if m.changedOnDisk() {
		m.Reload(ctx)
	}

	t := newRunTimers(m.clock, m.cfg.WatchDebounce, m.jittered())
	defer t.stop()
	t.retryUnless(w.complete())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.interval.C():
			t.interval.fired()
			m.Reload(ctx)
			t.interval.arm(m.clock, m.jittered())
		case <-m.reloaded:
			// Any reload, Run's or an explicit one, may follow a repointed
			// link: move the watches along.
			if w.watch(m.watchDirs()) {
				t.kick() // the new directory may have changed before it was watched
			}
			t.retryUnless(w.complete())
		case ev, ok := <-w.events():
			if !ok {
				w.disable()
				continue
			}
			w.handle(ev)
			t.retryUnless(w.complete())
			t.kick()
		case err, ok := <-w.errors():
			if !ok {
				w.disable()
				continue
			}
			m.log.Warn("TLS file watcher error; reloads continue on the interval", slog.String("error", err.Error()))
			t.kick() // events may have been lost: look at the files
		case <-t.settle.C():
			t.settle.fired()
			w.watch(m.watchDirs()) // before reading, so that no later change goes unseen
			m.Reload(ctx)
		case <-t.retryWatches.C():
			t.retryWatches.fired()
			if w.watch(m.watchDirs()) {
				// A directory came back: its files may have too.
				m.Reload(ctx)
			}
			t.retryUnless(w.complete())
		}
	}
}

func (m *Manager) jittered() time.Duration {
	d := m.cfg.ReloadInterval
	if j := int64(d / 10); j > 0 {
		d += time.Duration(rand.Int64N(j))
	}
	return d
}

// watchDirs lists the directories to watch: for every configured file the
// directory that holds it at the end of its symlink chain and every
// directory that holds a link on the way (linkChain), and for a CA
// directory the directory itself. They are real paths, so that no directory
// is watched under two names (fsnotify keeps one watch per directory: a
// second name would share it, and removing one would end both). For a file
// that cannot be resolved, the directory it would be in is listed, to be
// watched once it exists.
func (m *Manager) watchDirs() []string {
	var dirs []string
	add := func(d string) {
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	follow := func(path string, isDir bool) {
		end, links, _ := linkChain(path)
		for _, d := range links {
			add(d)
		}
		add(filepath.Dir(end))
		if isDir {
			add(end)
		}
	}
	for _, p := range m.cfg.Certs {
		follow(p.Cert, false)
		follow(p.Key, false)
	}
	follow(m.cfg.CA, m.snap.Load().ca.isDir)
	return dirs
}

// dirWatcher watches a set of directories, moves the watches when the set
// changes and re-adds those that disappeared once they exist again.
type dirWatcher struct {
	w        *fsnotify.Watcher
	log      *slog.Logger
	dirs     []string        // the directories to watch
	watching map[string]bool // the directories watched now
}

func newDirWatcher(dirs []string, log *slog.Logger) *dirWatcher {
	d := &dirWatcher{log: log, watching: make(map[string]bool)}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("Cannot watch the TLS files; reloads run on the interval only", slog.String("error", err.Error()))
		return d
	}
	d.w = w
	d.watch(dirs)
	return d
}

// watch makes dirs the directories to watch: it ends the watches of those
// no longer in it, adds the missing ones and reports whether it added any.
func (d *dirWatcher) watch(dirs []string) bool {
	d.dirs = dirs
	if d.w == nil {
		return false
	}
	for dir := range d.watching {
		if !slices.Contains(dirs, dir) {
			_ = d.w.Remove(dir) // fails if the directory is gone already
			delete(d.watching, dir)
		}
	}
	return d.ensure()
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
		delete(d.watching, name)
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
