package tlsmgr

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestLinkChain(t *testing.T) {
	for _, tc := range []struct {
		name     string
		layout   map[string]string // path -> symlink target; "" makes a file
		path     string
		end      string
		links    []string
		resolved bool
	}{
		{"PlainFile", map[string]string{"etc/node.crt": ""},
			"etc/node.crt", "etc/node.crt", nil, true},
		{"Certbot", map[string]string{
			"etc/node.crt":               "../live/kms/fullchain.pem",
			"live/kms/fullchain.pem":     "../../archive/kms/fullchain3.pem",
			"archive/kms/fullchain3.pem": "",
		}, "etc/node.crt", "archive/kms/fullchain3.pem", []string{"etc", "live/kms"}, true},
		{"AbsoluteTarget", map[string]string{
			"etc/node.crt":  "/live/node.crt", // made absolute under the test's root
			"live/node.crt": "",
		}, "etc/node.crt", "live/node.crt", []string{"etc"}, true},
		{"Kubernetes", map[string]string{
			"tls/node.crt":      "..data/node.crt",
			"tls/..data":        "..v1",
			"tls/..v1/node.crt": "",
		}, "tls/node.crt", "tls/..v1/node.crt", []string{"tls"}, true},
		{"DirectoryLink", map[string]string{
			"etc/current":             "releases/1",
			"etc/releases/1/node.crt": "",
		}, "etc/current/node.crt", "etc/releases/1/node.crt", []string{"etc"}, true},
		// ".." in a target leaves the real directory of the link, not the
		// directory it was reached by.
		{"DotDotAfterDirectoryLink", map[string]string{
			"etc/current":      "../store/a",
			"store/a/node.crt": "../b/node.crt",
			"store/b/node.crt": "",
		}, "etc/current/node.crt", "store/b/node.crt", []string{"etc", "store/a"}, true},
		{"Dangling", map[string]string{
			"etc/node.crt": "../live/kms/fullchain.pem",
			"live/":        "",
		}, "etc/node.crt", "live/kms/fullchain.pem", []string{"etc"}, false},
		{"MissingDirectory", map[string]string{"etc/": ""},
			"etc/certs/node.crt", "etc/certs/node.crt", nil, false},
		{"Loop", map[string]string{"etc/a": "b", "etc/b": "a"},
			"etc/a", "etc/a", []string{"etc"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := realTempDir(t)
			for p, target := range tc.layout {
				full := filepath.Join(root, p)
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					t.Fatal(err)
				}
				switch {
				case p[len(p)-1] == '/':
				case target == "":
					if err := os.WriteFile(full, nil, 0o600); err != nil {
						t.Fatal(err)
					}
				default:
					if filepath.IsAbs(target) {
						target = filepath.Join(root, target)
					}
					if err := os.Symlink(target, full); err != nil {
						t.Fatal(err)
					}
				}
			}
			end, links, resolved := linkChain(filepath.Join(root, tc.path))
			if rel(t, root, end) != tc.end || resolved != tc.resolved {
				t.Errorf("end %s, resolved %v; want %s, %v", rel(t, root, end), resolved, tc.end, tc.resolved)
			}
			var got []string
			for _, d := range links {
				got = append(got, rel(t, root, d))
			}
			if !slices.Equal(got, tc.links) {
				t.Errorf("link directories %q, want %q", got, tc.links)
			}
		})
	}
}

// TestLinkChainLeavesOutTheRoot: a link in / is the system's layout (here
// merged /usr's /bin -> usr/bin), and watching / would wake the watcher for
// nothing.
func TestLinkChainLeavesOutTheRoot(t *testing.T) {
	if fi, err := os.Lstat("/bin"); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Skip("/bin is not a symlink here")
	}
	end, links, resolved := linkChain("/bin")
	if !resolved || len(links) != 0 {
		t.Fatalf("linkChain(/bin) = %s, %q, %v; want the real directory, no link directories", end, links, resolved)
	}
}

// TestDirWatcherMovesWatches: a new set of directories ends the watches
// no longer in it and adds the new ones.
func TestDirWatcherMovesWatches(t *testing.T) {
	root := realTempDir(t)
	a, b, c, missing := filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "c"), filepath.Join(root, "missing")
	for _, d := range []string{a, b, c} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w := newDirWatcher([]string{a, b}, slog.New(slog.DiscardHandler))
	defer w.close()
	if w.w == nil {
		t.Fatal("no file watcher: fsnotify could not start one, so certificate files would not be watched")
	}
	if added := w.watch([]string{b, c, missing}); !added {
		t.Error("adding c reported nothing added")
	}
	got := w.w.WatchList()
	slices.Sort(got)
	if want := []string{b, c}; !slices.Equal(got, want) {
		t.Errorf("watching %q, want %q", got, want)
	}
	if w.complete() {
		t.Error("complete with a directory missing")
	}
	if added := w.watch([]string{b, c, missing}); added {
		t.Error("the same set again reported a directory added")
	}
	if err := os.Mkdir(missing, 0o755); err != nil {
		t.Fatal(err)
	}
	if added := w.watch([]string{b, c, missing}); !added || !w.complete() {
		t.Errorf("after the directory appeared: added %v, complete %v; want both", added, w.complete())
	}
}

func rel(t *testing.T, root, path string) string {
	t.Helper()
	r, err := filepath.Rel(root, path)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.ToSlash(r)
}

// realTempDir returns t.TempDir() without symlinks, as linkChain reports it.
func realTempDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
