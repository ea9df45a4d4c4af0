package vm

import (
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
)

// guestModules are the modules the guest loads, by name: the NBD driver,
// ext4 (crc32c first: ext4 and jbd2 ask for it by crypto alias, which
// modinfo's dependencies do not list) and the e1000 network card that
// qemu's user-mode network gives the guest.
var guestModules = []string{"nbd", "crc32c_generic", "ext4", "e1000"}

// moduleName normalises a module file or dependency name.
func moduleName(s string) string {
	return strings.ReplaceAll(strings.TrimSuffix(filepath.Base(s), ".ko"), "-", "_")
}

// resolveModules returns the .ko files (relative to dir) that load names,
// each after its dependencies.
func resolveModules(dir string, names []string) ([]string, error) {
	index := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".ko") {
			rel, _ := filepath.Rel(dir, p)
			index[moduleName(p)] = rel
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	var order []string
	seen := map[string]bool{}
	var visit func(name string) error
	visit = func(name string) error {
		if seen[name] {
			return nil
		}
		seen[name] = true
		rel, ok := index[name]
		if !ok {
			return fmt.Errorf("module %s not found under %s (compressed modules are not supported)", name, dir)
		}
		out, err := exec.Command("modinfo", "-F", "depends", filepath.Join(dir, rel)).Output()
		if err != nil {
			return fmt.Errorf("modinfo %s: %w", rel, err)
		}
		for _, dep := range strings.Split(strings.TrimSpace(string(out)), ",") {
			if dep != "" {
				if err := visit(moduleName(dep)); err != nil {
					return err
				}
			}
		}
		order = append(order, rel)
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// sharedLibraries lists what ldd says bin loads (the dynamic loader
// included), as absolute paths.
func sharedLibraries(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", bin, err)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0]) // the loader: /lib64/ld-linux-x86-64.so.2
		}
	}
	return libs, nil
}
