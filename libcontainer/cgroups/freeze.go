package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/husk-runtime/husk/internal/rawfile"
)

// freezerFile returns the file that freezes the cgroup and the values for frozen and thawed:
// the v1 freezer where mounted, else cgroup.freeze of cgroup2.
func (m *Manager) freezerFile() (file, frozen, thawed string, err error) {
	if d := m.v1Dir("freezer"); d != "" {
		return filepath.Join(d, "freezer.state"), "FROZEN", "THAWED", nil
	}
	if d := m.v2Dir(); d != "" {
		f := filepath.Join(d, "cgroup.freeze")
		if _, err := os.Stat(f); err == nil {
			return f, "1", "0", nil
		}
	}
	return "", "", "", errors.New("no freezer: neither the v1 freezer controller nor cgroup.freeze is available")
}

// ThawTree thaws the cgroup and every sub-cgroup under it, without waiting: for a kill that
// must take effect. A process the container froze in a sub-cgroup of its own (v1 freezer, or
// cgroup.freeze) cannot die of SIGKILL, and thawing the container's cgroup does not thaw it;
// runc's delete then fails after its timeout, leaving the container undeletable.
func (m *Manager) ThawTree() {
	file, _, thawed, err := m.freezerFile()
	if err != nil {
		return
	}
	name := filepath.Base(file)
	_ = filepath.WalkDir(filepath.Dir(file), func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		_ = writeExisting(filepath.Join(path, name), []byte(thawed))
		return nil
	})
}

// Freeze stops every process of the cgroup and waits until the kernel reports it frozen.
func (m *Manager) Freeze() error { return m.setFrozen(true) }

// Thaw resumes the cgroup.
func (m *Manager) Thaw() error { return m.setFrozen(false) }

func (m *Manager) setFrozen(freeze bool) error {
	file, frozen, thawed, err := m.freezerFile()
	if err != nil {
		return err
	}
	want := thawed
	if freeze {
		want = frozen
	}
	if err := writeExisting(file, []byte(want)); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	if strings.HasSuffix(file, "cgroup.freeze") {
		return nil // the write to cgroup.freeze is synchronous enough; events report completion
	}
	for i := 0; i < 1000; i++ {
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(b)) == want {
			return nil
		}
		if freeze && strings.TrimSpace(string(b)) == "FREEZING" && i%50 == 49 {
			// Retry: a freeze can stall on a process in uninterruptible sleep (runc #2753).
			_ = writeExisting(file, []byte(frozen))
		}
		time.Sleep(time.Millisecond)
	}
	if freeze {
		_ = writeExisting(file, []byte(thawed))
	}
	return fmt.Errorf("cgroup %s did not reach %s", file, want)
}

// Frozen reports whether the cgroup is frozen (false when there is no freezer).
func (m *Manager) Frozen() bool {
	file, frozen, _, err := m.freezerFile()
	if err != nil {
		return false
	}
	b, err := rawfile.Read(file, 64)
	return err == nil && strings.TrimSpace(string(b)) == frozen
}

// FreezerDir is the cgroup directory whose freezer stops the container (CRIU freezes the
// container through it): the v1 freezer's, else the cgroup2 directory; "" without one.
func (m *Manager) FreezerDir() string {
	file, _, _, err := m.freezerFile()
	if err != nil {
		return ""
	}
	return filepath.Dir(file)
}
