package tlsmgr

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// maxLinkHops bounds the symlinks followed to resolve one path, as the
// kernel does (40 on Linux): a longer chain is a loop.
const maxLinkHops = 40

// linkChain resolves path as the kernel would, one component at a time, and
// returns where it ends and the real directories that hold a symlink met on
// the way: the configured file when it is a link, every link it points to,
// and the symlinked directories in any of their paths. A change in any of
// them can change what path names, so they are worth watching. Relative
// targets are resolved against the real directory of their link, as the
// kernel resolves them.
//
// Links in the root directory are left out: they are the system's layout
// (merged /usr, macOS' /var -> private/var), never rotated, and watching /
// would wake the watcher for nothing.
//
// resolved is false when path cannot be resolved (a missing directory, a
// dangling link, a loop); end is then the lexical path of what is missing,
// whose directory may be watched once it exists.
func linkChain(path string) (end string, linkDirs []string, resolved bool) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path), nil, false
	}
	root := filepath.VolumeName(abs) + string(filepath.Separator)
	dir, rest := root, abs[len(root):] // dir is real: it holds no symlink
	hops := 0
	for rest != "" {
		var name string
		name, rest, _ = strings.Cut(rest, string(filepath.Separator))
		switch name {
		case "", ".":
			continue
		case "..":
			dir = filepath.Dir(dir)
			continue
		}
		next := filepath.Join(dir, name)
		fi, err := os.Lstat(next)
		if err != nil {
			return filepath.Join(next, rest), linkDirs, false
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			dir = next
			continue
		}
		target, err := os.Readlink(next)
		if hops++; err != nil || hops > maxLinkHops {
			return filepath.Join(next, rest), linkDirs, false
		}
		if dir != root && !slices.Contains(linkDirs, dir) {
			linkDirs = append(linkDirs, dir)
		}
		if filepath.IsAbs(target) {
			dir = root
			target = target[len(filepath.VolumeName(target)):]
		}
		rest = target + string(filepath.Separator) + rest
	}
	return dir, linkDirs, true
}
