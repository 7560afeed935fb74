package libcontainer

import "testing"

func TestValidateID(t *testing.T) {
	for _, id := range []string{"", ".", "..", "a/b", "a b", "../x"} {
		if ValidateID(id) == nil {
			t.Errorf("id %q accepted", id)
		}
	}
	for _, id := range []string{"abc", "a-b_c.d+e", "0123"} {
		if err := ValidateID(id); err != nil {
			t.Errorf("id %q rejected: %v", id, err)
		}
	}
}
