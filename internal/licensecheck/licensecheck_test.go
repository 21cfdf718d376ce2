package licensecheck

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// allowed are the licences compatible with Apache-2.0 that minkms's
// dependencies may have, each known by phrases of its text.
var allowed = []struct {
	name    string
	phrases []string
}{
	{"Apache-2.0", []string{"Apache License", "Version 2.0"}},
	{"MIT", []string{"Permission is hereby granted, free of charge"}},
	{"BSD", []string{"Redistribution and use in source and binary forms"}},
	{"ISC", []string{"Permission to use, copy, modify, and/or distribute this software for any purpose"}},
	{"MPL-2.0", []string{"Mozilla Public License", "2.0"}},
}

// forbidden are phrases of licences minkms must not depend on.
var forbidden = []string{
	"GNU AFFERO GENERAL PUBLIC LICENSE",
	"GNU GENERAL PUBLIC LICENSE",
	"GNU LESSER GENERAL PUBLIC LICENSE",
	"Server Side Public License",
	"Business Source License",
}

// forbiddenModules are AGPL modules named here as well, whatever their
// files say: KES and its client library.
var forbiddenModules = []string{"github.com/minio/kes", "github.com/minio/kms-go"}

// mpl2 finds the MPL-2.0's title, spelt "Version 2.0" or "version 2.0".
var mpl2 = regexp.MustCompile(`Mozilla Public License,? [Vv]ersion 2\.0`)

var licenseFile = regexp.MustCompile(`(?i)^(licen[cs]e|copying)([.-].*)?$`)

// classify returns the licences whose phrases text holds, and the
// forbidden phrase it holds ("" if none).
func classify(text string) (found []string, bad string) {
	norm := strings.Join(strings.Fields(text), " ")
	upper := strings.ToUpper(norm)
	// The MPL-2.0 names the GNU licences itself, as "Secondary Licenses"
	// a recipient may also use: its text is MPL-2.0 and nothing else.
	if mpl2.MatchString(norm) && strings.Contains(norm, "Secondary License") {
		return []string{"MPL-2.0"}, ""
	}
	for _, f := range forbidden {
		if strings.Contains(upper, strings.ToUpper(f)) {
			return nil, f
		}
	}
	for _, l := range allowed {
		ok := true
		for _, p := range l.phrases {
			if !strings.Contains(norm, p) {
				ok = false
				break
			}
		}
		if ok {
			found = append(found, l.name)
		}
	}
	return found, ""
}

// TestClassify: the phrases tell the licences apart.
func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		text, want, bad string
	}{
		{"Apache License\n Version 2.0, January 2004", "Apache-2.0", ""},
		{"Permission is hereby granted, free of charge, to any person", "MIT", ""},
		{"Redistribution and use in source and binary forms, with or without", "BSD", ""},
		{"Mozilla Public License Version 2.0", "MPL-2.0", ""},
		{"Mozilla Public License, version 2.0 ... Secondary License means the GNU Affero General Public License", "MPL-2.0", ""},
		{"GNU GENERAL PUBLIC LICENSE Version 2", "", "GNU GENERAL PUBLIC LICENSE"},
		{"GNU AFFERO GENERAL PUBLIC LICENSE Version 3", "", "GNU AFFERO GENERAL PUBLIC LICENSE"},
		{"All rights reserved.", "", ""},
	} {
		found, bad := classify(tt.text)
		if bad != tt.bad || strings.Join(found, ",") != tt.want {
			t.Errorf("classify(%q) = %v, %q; want %q, %q", tt.text, found, bad, tt.want, tt.bad)
		}
	}
}

// TestDependencyLicenses: minkms is Apache-2.0 (LICENSE at the root), and
// every module of its build and tests (go list -deps -test ./...) has a
// licence file in the module cache under a licence of the allow-list.
func TestDependencyLicenses(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	own, err := os.ReadFile(filepath.Join(root, "LICENSE"))
	if err != nil {
		t.Fatalf("minkms has no LICENSE: %v", err)
	}
	if found, _ := classify(string(own)); strings.Join(found, ",") != "Apache-2.0" {
		t.Errorf("LICENSE is %v, want Apache-2.0", found)
	}

	cmd := exec.Command("go", "list", "-deps", "-test", "-f", "{{with .Module}}{{if not .Main}}{{.Path}}@{{.Version}} {{.Dir}}{{end}}{{end}}", "./...")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		mod, dir, _ := strings.Cut(sc.Text(), " ")
		if mod == "" || seen[mod] {
			continue
		}
		seen[mod] = true
		path, _, _ := strings.Cut(mod, "@")
		for _, f := range forbiddenModules {
			if path == f || strings.HasPrefix(path, f+"/") {
				t.Errorf("%s: minkms must not depend on %s (AGPL)", mod, f)
			}
		}
		if dir == "" {
			t.Errorf("%s: not in the module cache (run go mod download)", mod)
			continue
		}
		found, bad, files := moduleLicenses(t, dir)
		switch {
		case bad != "":
			t.Errorf("%s: %s is not compatible with Apache-2.0", mod, bad)
		case files == 0:
			t.Errorf("%s: no licence file in %s", mod, dir)
		case len(found) == 0:
			t.Errorf("%s: licence not on the allow-list (Apache-2.0, BSD, MIT, ISC, MPL-2.0)", mod)
		default:
			t.Logf("%s: %s", mod, strings.Join(found, ", "))
		}
	}
	if len(seen) == 0 {
		t.Fatal("go list named no dependency")
	}
}

// moduleLicenses classifies the licence files at the root of a module.
func moduleLicenses(t *testing.T, dir string) (found []string, bad string, files int) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() || !licenseFile.MatchString(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files++
		f, b := classify(string(data))
		if b != "" {
			return nil, b, files
		}
		found = append(found, f...)
	}
	return found, "", files
}
