package specs

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzParseAndValidate(f *testing.F) {
	f.Add([]byte(`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/"},"linux":{"namespaces":[{"type":"pid"}]}}`))
	f.Add([]byte(`{"process":{"args":"sh"}}`))
	f.Add([]byte(`{"mounts":[{"destination":"/x","type":"bind","source":"/","options":["rbind","ro",""]}]}`))
	f.Add([]byte(`{"linux":{"uidMappings":[{"containerID":0,"hostID":1,"size":1}],"namespaces":[{"type":"user","path":"rel"}]}}`))
	f.Add([]byte("{\n\"root\": {,}"))
	bundle := f.TempDir()
	os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		// Validation must never panic, whatever nil sections or odd values the JSON held.
		_ = Validate(s, bundle)
	})
}

func FuzzParseMountOptions(f *testing.F) {
	f.Add("rbind,ro,nosuid,rslave,size=64k")
	f.Add("rw,remount,,mode=0755")
	f.Add("bind\x00,private")
	f.Fuzz(func(t *testing.T, s string) {
		var opts []string
		start := 0
		for i := 0; i <= len(s); i++ {
			if i == len(s) || s[i] == ',' {
				opts = append(opts, s[start:i])
				start = i + 1
			}
		}
		mo, err := ParseMountOptions(opts)
		if err == nil && mo.Recursive && !mo.Bind {
			t.Fatal("recursive without bind")
		}
	})
}

func FuzzParseProcess(f *testing.F) {
	f.Add([]byte(`{"args":["sh","-c","true"],"env":["PATH=/bin"],"cwd":"/"}`))
	f.Add([]byte(`{"args":[],"cwd":"rel"}`))
	f.Add([]byte(`{"capabilities":{"bounding":["CAP_NOPE"]},"args":["x"],"cwd":"/"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProcess(data)
		if err != nil {
			return
		}
		if len(p.Args) == 0 {
			t.Fatal("accepted a process without args")
		}
		_ = ValidateProcess(p)
	})
}
