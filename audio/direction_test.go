package audio

import "testing"

func TestDirection(t *testing.T) {
	for _, tc := range []struct {
		d             Direction
		name          string
		reverse       Direction
		send, receive bool
	}{
		{SendRecv, "sendrecv", SendRecv, true, true},
		{SendOnly, "sendonly", RecvOnly, true, false},
		{RecvOnly, "recvonly", SendOnly, false, true},
		{Inactive, "inactive", Inactive, false, false},
	} {
		if tc.d.String() != tc.name {
			t.Errorf("%d.String() = %q, want %q", tc.d, tc.d.String(), tc.name)
		}
		if d, ok := ParseDirection(tc.name); !ok || d != tc.d {
			t.Errorf("ParseDirection(%q) = %v, %v", tc.name, d, ok)
		}
		if tc.d.Reverse() != tc.reverse {
			t.Errorf("%v.Reverse() = %v, want %v", tc.d, tc.d.Reverse(), tc.reverse)
		}
		if tc.d.CanSend() != tc.send || tc.d.CanReceive() != tc.receive {
			t.Errorf("%v: CanSend %v CanReceive %v", tc.d, tc.d.CanSend(), tc.d.CanReceive())
		}
	}
	if _, ok := ParseDirection("SENDRECV "); ok {
		t.Error("ParseDirection accepted a malformed attribute")
	}
	if Direction(9).String() != "unknown" {
		t.Error("out-of-range Direction has a name")
	}
}
