package systemd

import (
	"strings"
	"testing"
)

func TestResolveLikeRunc(t *testing.T) {
	for _, c := range []struct{ in, unit, slice, path string }{
		{"", "husk-abc.scope", "system.slice", "/system.slice/husk-abc.scope"},
		{"system.slice:runc:test1", "runc-test1.scope", "system.slice", "/system.slice/runc-test1.scope"},
		{":cri-containerd:abc", "cri-containerd-abc.scope", "system.slice", "/system.slice/cri-containerd-abc.scope"},
		{"kubepods-burstable-pod1.slice:cri-containerd:c1", "cri-containerd-c1.scope", "kubepods-burstable-pod1.slice",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-c1.scope"},
		{"-.slice:p:n", "p-n.scope", "-.slice", "/p-n.scope"},
		{"system.slice::n", "n.scope", "system.slice", "/system.slice/n.scope"},
		{"machine.slice:x:machine-test.slice", "machine-test.slice", "machine.slice", "/machine.slice/machine-test.slice"},
	} {
		u, path, err := Resolve(c.in, "abc", nil)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if u.Name != c.unit || u.Slice != c.slice || path != c.path {
			t.Errorf("%q: unit %q slice %q path %q, want %q %q %q", c.in, u.Name, u.Slice, path, c.unit, c.slice, c.path)
		}
	}
	for _, bad := range []string{"/foo", "a:b", "a:b:c:d", "system.slice:p:", "foo:p:n", "a--b.slice:p:n", "system.slice:p:a/b", "system.slice:x:other-test.slice"} {
		if _, _, err := Resolve(bad, "abc", nil); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want a one-line error", bad, err)
		}
	}
}

func TestParentSlicesInnermostFirst(t *testing.T) {
	u, _, err := Resolve("kubepods-burstable-pod1.slice:cri-containerd:c1", "c1", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(u.ParentSlices(), " ")
	if got != "kubepods-burstable-pod1.slice kubepods-burstable.slice kubepods.slice" {
		t.Errorf("parent slices: %s", got)
	}
}

func TestResolveKeepsPropertyAnnotations(t *testing.T) {
	u, _, err := Resolve("", "abc", map[string]string{PropertyPrefix + "CollectMode": "'inactive-or-failed'", "other": "x"})
	if err != nil || len(u.Properties) != 1 || u.Properties["CollectMode"] != "'inactive-or-failed'" {
		t.Errorf("properties %v, %v", u.Properties, err)
	}
	if _, _, err := Resolve("", "abc", map[string]string{PropertyPrefix + "Bad-Name": "true"}); err == nil || !strings.Contains(err.Error(), "Bad-Name") {
		t.Errorf("a bad property name: %v", err)
	}
}
