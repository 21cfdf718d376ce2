package tlsmgr_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/minkms/minkms/tlsmgr"
	"github.com/minkms/minkms/tlsmgr/internal/testpki"
)

// mustRun runs m until the test ends.
func mustRun(t *testing.T, m *tlsmgr.Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := m.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func TestRunReloadsOnTheInterval(t *testing.T) {
	f := mustFixture(t)
	// The fake clock also drives the debounce of file events: a debounce
	// longer than the test keeps the watcher from doing the interval's job.
	m := f.mustManager(t, func(c *tlsmgr.Config) { c.ReloadInterval = time.Minute; c.WatchDebounce = 24 * time.Hour })
	rotations, cancel := m.Subscribe()
	defer cancel()
	mustRun(t, m)
	f.clock.WaitTimers(t, 1) // the interval timer is armed

	next := f.issue(t, testpki.Options{})
	f.writePair(t, next)
	f.clock.Advance(time.Minute - time.Second) // before the interval: nothing fires
	if got := servedSerial(m); got == serialOf(next.Cert) {
		t.Fatal("reloaded before the interval")
	}
	f.clock.Advance(time.Second + time.Minute/10) // the interval plus the largest jitter
	waitNotified(t, rotations)
	if got := servedSerial(m); got != serialOf(next.Cert) {
		t.Fatalf("served %s, want %s", got, serialOf(next.Cert))
	}
}

// TestRunPicksUpChangesMadeBeforeIt: files replaced after New but before
// Run watched them raised no event; Run finds them at once, not an
// interval later.
func TestRunPicksUpChangesMadeBeforeIt(t *testing.T) {
	f := mustFixture(t)
	m := f.mustManager(t, func(c *tlsmgr.Config) { c.WatchDebounce = 24 * time.Hour })
	next := f.issue(t, testpki.Options{})
	f.writePair(t, next)
	mustRun(t, m) // the fake clock never moves: no interval, no debounce
	testpki.Eventually(t, func() bool { return servedSerial(m) == serialOf(next.Cert) }, "the new certificate to be served")
}

// TestRunDoesNotCheckUnchangedFilesAtStart: an unchanged start is silent.
func TestRunDoesNotCheckUnchangedFilesAtStart(t *testing.T) {
	f := mustFixture(t)
	m := f.mustManager(t, func(c *tlsmgr.Config) { c.WatchDebounce = 24 * time.Hour })
	mustRun(t, m)
	f.clock.WaitTimers(t, 1) // Run is past its start
	mt := m.Metrics()
	if n := mt.Reloads[tlsmgr.Unchanged] + mt.Reloads[tlsmgr.Reloaded] + mt.Reloads[tlsmgr.Failed]; n != 0 {
		t.Fatalf("%d reloads at start, want none", n)
	}
}

func TestRunReloadsOnFileChange(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layout func(t *testing.T, f *fixture) // prepare the files
		change func(t *testing.T, f *fixture, l *testpki.Leaf)
	}{
		{"RenameOver", nil, func(t *testing.T, f *fixture, l *testpki.Leaf) {
			testpki.MustReplace(t, f.pair.Key, l.KeyPEM)
			testpki.MustReplace(t, f.pair.Cert, l.CertPEM)
		}},
		{"InPlaceWrite", nil, func(t *testing.T, f *fixture, l *testpki.Leaf) {
			f.writePair(t, l)
		}},
		{"SymlinkSwap", kubernetesLayout, func(t *testing.T, f *fixture, l *testpki.Leaf) {
			v2 := filepath.Join(f.dir, "..v2")
			mustMkdir(t, v2)
			testpki.MustWrite(t, v2, "node.crt", l.CertPEM)
			testpki.MustWrite(t, v2, "node.key", l.KeyPEM)
			testpki.MustWrite(t, v2, "ca.pem", f.ca.PEM)
			tmp := filepath.Join(f.dir, "..data_tmp")
			if err := os.Symlink("..v2", tmp); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(f.dir, "..data")); err != nil {
				t.Fatal(err)
			}
		}},
		{"DirectoryRecreated", subdirLayout, func(t *testing.T, f *fixture, l *testpki.Leaf) {
			sub := filepath.Dir(f.pair.Cert)
			if err := os.RemoveAll(sub); err != nil {
				t.Fatal(err)
			}
			mustMkdir(t, sub)
			f.writePair(t, l)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustFixture(t)
			if tc.layout != nil {
				tc.layout(t, f)
			}
			m := f.mustManager(t, func(c *tlsmgr.Config) { c.Clock = nil; c.WatchDebounce = 20 * time.Millisecond })
			rotations, cancel := m.Subscribe()
			defer cancel()
			mustRun(t, m)
			waitWatching(t, f, m)

			next := f.issue(t, testpki.Options{})
			tc.change(t, f, next)
			testpki.Eventually(t, func() bool { return servedSerial(m) == serialOf(next.Cert) }, "the new certificate to be served")
			waitNotified(t, rotations)
		})
	}
}

// TestRunIgnoresUnchangedContent: rewriting the same bytes triggers a check
// that finds nothing to do.
func TestRunIgnoresUnchangedContent(t *testing.T) {
	f := mustFixture(t)
	m := f.mustManager(t, func(c *tlsmgr.Config) { c.Clock = nil; c.WatchDebounce = 20 * time.Millisecond })
	rotations, cancel := m.Subscribe()
	defer cancel()
	mustRun(t, m)
	waitWatching(t, f, m)

	before := m.Metrics().Reloads[tlsmgr.Unchanged]
	f.writePair(t, f.leaf)
	testpki.Eventually(t, func() bool { return m.Metrics().Reloads[tlsmgr.Unchanged] > before }, "a check of the rewritten files")
	select {
	case <-rotations:
		t.Fatal("unchanged content rotated the certificate")
	default:
	}
	if n := m.Metrics().Reloads[tlsmgr.Reloaded]; n != 0 {
		t.Fatalf("%d reloads, want none", n)
	}
}

// waitWatching waits until the watcher sees events: it touches an unrelated
// file, waits for the debounced check, and touches it again if none came
// (the watcher may not have been added yet). It must not touch the file
// faster than the debounce, or the debounce never ends.
func waitWatching(t *testing.T, f *fixture, m *tlsmgr.Manager) {
	t.Helper()
	probe := filepath.Join(filepath.Dir(f.pair.Cert), "probe")
	checks := func() uint64 {
		mt := m.Metrics()
		return mt.Reloads[tlsmgr.Unchanged] + mt.Reloads[tlsmgr.Failed] + mt.Reloads[tlsmgr.Reloaded]
	}
	deadline := time.Now().Add(10 * time.Second)
	for checks() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the watcher to start")
		}
		mustWriteFile(t, probe, []byte(time.Now().String()))
		next := time.Now().Add(200 * time.Millisecond)
		for checks() == 0 && time.Now().Before(next) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// kubernetesLayout lays the files out as a Kubernetes secret volume:
// node.crt → ..data/node.crt, ..data → ..v1.
func kubernetesLayout(t *testing.T, f *fixture) {
	v1 := filepath.Join(f.dir, "..v1")
	mustMkdir(t, v1)
	testpki.MustWrite(t, v1, "node.crt", f.leaf.CertPEM)
	testpki.MustWrite(t, v1, "node.key", f.leaf.KeyPEM)
	testpki.MustWrite(t, v1, "ca.pem", f.ca.PEM)
	mustSymlink(t, "..v1", filepath.Join(f.dir, "..data"))
	for _, name := range []string{"node.crt", "node.key", "ca.pem"} {
		p := filepath.Join(f.dir, name)
		os.Remove(p)
		mustSymlink(t, filepath.Join("..data", name), p)
	}
}

// subdirLayout moves the pair into a subdirectory of its own.
func subdirLayout(t *testing.T, f *fixture) {
	sub := filepath.Join(f.dir, "certs")
	mustMkdir(t, sub)
	f.pair = tlsmgr.Pair{
		Cert: testpki.MustWrite(t, sub, "node.crt", f.leaf.CertPEM),
		Key:  testpki.MustWrite(t, sub, "node.key", f.leaf.KeyPEM),
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestRunFollowsSymlinkChains: a configured path that is a link into
// directories managed elsewhere is watched along its whole chain, and the
// watches move when the chain does. The interval is a day away, so only the
// watch can serve the new certificate.
func TestRunFollowsSymlinkChains(t *testing.T) {
	start := func(t *testing.T, f *fixture) *tlsmgr.Manager {
		t.Helper()
		m := f.mustManager(t, func(c *tlsmgr.Config) {
			c.Clock = nil
			c.ReloadInterval = 24 * time.Hour
			c.WatchDebounce = 20 * time.Millisecond
		})
		mustRun(t, m)
		waitWatching(t, f, m)
		return m
	}
	waitServed := func(t *testing.T, m *tlsmgr.Manager, l *testpki.Leaf) {
		t.Helper()
		testpki.Eventually(t, func() bool { return servedSerial(m) == serialOf(l.Cert) }, "certificate %s to be served", serialOf(l.Cert))
	}

	// Certbot renews by writing fullchain2.pem into archive/ and repointing
	// the link in live/, a directory that holds neither the configured
	// file nor the certificate.
	t.Run("CertbotRenewal", func(t *testing.T) {
		f := mustFixture(t)
		certbotLayout(t, f)
		next := f.issue(t, testpki.Options{})
		archive := filepath.Join(f.dir, "archive", "kms")
		testpki.MustWrite(t, archive, "fullchain2.pem", next.CertPEM)
		testpki.MustWrite(t, archive, "privkey2.pem", next.KeyPEM)
		m := start(t, f)

		repoint(t, filepath.Join(f.dir, "live", "kms", "privkey.pem"), "../../archive/kms/privkey2.pem")
		repoint(t, filepath.Join(f.dir, "live", "kms", "fullchain.pem"), "../../archive/kms/fullchain2.pem")
		waitServed(t, m, next)
	})

	// The chain moves to another directory: changes there are seen too.
	t.Run("ChainMovesToAnotherDirectory", func(t *testing.T) {
		f := mustFixture(t)
		certbotLayout(t, f)
		second := f.issue(t, testpki.Options{})
		other := filepath.Join(f.dir, "other")
		mustMkdir(t, other)
		testpki.MustWrite(t, other, "fullchain.pem", second.CertPEM)
		testpki.MustWrite(t, other, "privkey.pem", second.KeyPEM)
		m := start(t, f)

		repoint(t, filepath.Join(f.dir, "live", "kms", "privkey.pem"), "../../other/privkey.pem")
		repoint(t, filepath.Join(f.dir, "live", "kms", "fullchain.pem"), "../../other/fullchain.pem")
		waitServed(t, m, second)

		third := f.issue(t, testpki.Options{})
		testpki.MustReplace(t, filepath.Join(other, "privkey.pem"), third.KeyPEM)
		testpki.MustReplace(t, filepath.Join(other, "fullchain.pem"), third.CertPEM)
		waitServed(t, m, third)
	})

	// The configured file's directory is a link that is repointed:
	// etc/current -> ../releases/1 becomes etc/current -> ../releases/2.
	t.Run("DirectoryLinkRepointed", func(t *testing.T) {
		f := mustFixture(t)
		etc, releases := filepath.Join(f.dir, "etc"), filepath.Join(f.dir, "releases")
		mustMkdir(t, etc)
		mustMkdir(t, filepath.Join(releases, "1"))
		testpki.MustWrite(t, filepath.Join(releases, "1"), "node.crt", f.leaf.CertPEM)
		testpki.MustWrite(t, filepath.Join(releases, "1"), "node.key", f.leaf.KeyPEM)
		next := f.issue(t, testpki.Options{})
		mustMkdir(t, filepath.Join(releases, "2"))
		testpki.MustWrite(t, filepath.Join(releases, "2"), "node.crt", next.CertPEM)
		testpki.MustWrite(t, filepath.Join(releases, "2"), "node.key", next.KeyPEM)
		current := filepath.Join(etc, "current")
		mustSymlink(t, "../releases/1", current)
		f.pair = tlsmgr.Pair{Cert: filepath.Join(current, "node.crt"), Key: filepath.Join(current, "node.key")}
		m := start(t, f)

		repoint(t, current, "../releases/2")
		waitServed(t, m, next)
	})
}

// certbotLayout lays the pair out as certbot does, with the configured
// paths in etc/: etc/node.crt -> ../live/kms/fullchain.pem ->
// ../../archive/kms/fullchain1.pem, and the same for the key.
func certbotLayout(t *testing.T, f *fixture) {
	t.Helper()
	etc, live, archive := filepath.Join(f.dir, "etc"), filepath.Join(f.dir, "live", "kms"), filepath.Join(f.dir, "archive", "kms")
	for _, d := range []string{etc, live, archive} {
		mustMkdir(t, d)
	}
	testpki.MustWrite(t, archive, "fullchain1.pem", f.leaf.CertPEM)
	testpki.MustWrite(t, archive, "privkey1.pem", f.leaf.KeyPEM)
	mustSymlink(t, "../../archive/kms/fullchain1.pem", filepath.Join(live, "fullchain.pem"))
	mustSymlink(t, "../../archive/kms/privkey1.pem", filepath.Join(live, "privkey.pem"))
	mustSymlink(t, "../live/kms/fullchain.pem", filepath.Join(etc, "node.crt"))
	mustSymlink(t, "../live/kms/privkey.pem", filepath.Join(etc, "node.key"))
	f.pair = tlsmgr.Pair{Cert: filepath.Join(etc, "node.crt"), Key: filepath.Join(etc, "node.key")}
}

// repoint points the symlink link at target atomically, as certbot and
// `ln -sfn` followed by a rename do.
func repoint(t *testing.T, link, target string) {
	t.Helper()
	tmp := link + ".tmp"
	mustSymlink(t, target, tmp)
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
}
