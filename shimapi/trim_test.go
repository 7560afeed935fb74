package shimapi

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTrimAfterBinaryReplaced: an idle shim whose binary was replaced on disk (an upgrade)
// still drops its text pages. Run in a child whose own binary is deleted first.
func TestTrimAfterBinaryReplaced(t *testing.T) {
	if os.Getenv("HUSK_TRIM_CHILD") != "" {
		if err := os.Remove(os.Args[0]); err != nil {
			fmt.Println("remove:", err)
			return
		}
		before := textRSS()
		trimMemory()
		fmt.Printf("TRIM %d %d\n", before, textRSS())
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "shimapi.test")
	if err := os.WriteFile(cp, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cp, "-test.run=^TestTrimAfterBinaryReplaced$")
	cmd.Env = append(os.Environ(), "HUSK_TRIM_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v %s", err, out)
	}
	var before, after int
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "TRIM ") {
			fmt.Sscanf(l, "TRIM %d %d", &before, &after)
		}
	}
	// What runs after the trim (the measuring included) faults some text back in, 64 kB at a
	// time; an untrimmed binary keeps all of it.
	if before == 0 || before-after < 256 {
		t.Fatalf("text resident before/after the trim: %d/%d kB (child said %q)", before, after, out)
	}
}

// textRSS sums the resident kB of this process's executable text mappings.
func textRSS() int {
	var st unix.Stat_t
	if unix.Stat("/proc/self/exe", &st) != nil {
		return 0
	}
	ino := strconv.FormatUint(st.Ino, 10)
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0
	}
	defer f.Close()
	total, in := 0, false
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = fields[4] == ino && strings.Contains(fields[1], "x")
			continue
		}
		if in && len(fields) >= 2 && fields[0] == "Rss:" {
			n, _ := strconv.Atoi(fields[1])
			total += n
		}
	}
	return total
}
