package specs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkLoad is the first thing every create does: read, parse and validate config.json.
func BenchmarkLoad(b *testing.B) {
	dir := b.TempDir()
	os.Mkdir(filepath.Join(dir, "rootfs"), 0o755)
	data, _ := json.Marshal(Default())
	os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, _, err := Load(dir, nil); err != nil {
			b.Fatal(err)
		}
	}
}
