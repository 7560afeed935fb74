package goinit

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/husk-runtime/husk/libcontainer/initproto"
	"github.com/husk-runtime/husk/specs"
)

// BenchmarkSyncConfig is the config's trip to the init: one JSON message each way per create.
func BenchmarkSyncConfig(b *testing.B) {
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	raw, _ := json.Marshal(specs.Default())
	cfg := &initConfig{InitConfig: initproto.InitConfig{Mode: initproto.ModeCreate, ID: "bench", RawSpec: raw, Rootfs: "/rootfs"}}
	send, recv := initproto.NewConn(w), initproto.NewConn(r)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		go send.SendConfig(cfg)
		got := &initConfig{}
		if err := recv.WaitConfig(got); err != nil {
			b.Fatal(err)
		}
		if err := decodeSpec(got); err != nil {
			b.Fatal(err)
		}
	}
}
