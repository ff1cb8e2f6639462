package audio

// Direction is the media direction from OUR side of the session, as in the
// SDP attributes of RFC 3264 §5.1 / §6.1. The zero value is SendRecv.
type Direction uint8

// Directions. When the peer puts us on hold with a=sendonly we answer
// a=recvonly: we receive but must not send; a=inactive: neither.
const (
	SendRecv Direction = iota
	SendOnly
	RecvOnly
	Inactive
)

// String returns the SDP attribute name.
func (d Direction) String() string {
	switch d {
	case SendRecv:
		return "sendrecv"
	case SendOnly:
		return "sendonly"
	case RecvOnly:
		return "recvonly"
	case Inactive:
		return "inactive"
	}
	return "unknown"
}

// ParseDirection parses an SDP direction attribute name.
func ParseDirection(s string) (Direction, bool) {
	switch s {
	case "sendrecv":
		return SendRecv, true
	case "sendonly":
		return SendOnly, true
	case "recvonly":
		return RecvOnly, true
	case "inactive":
		return Inactive, true
	}
	return SendRecv, false
}

// Reverse returns the direction seen from the other side: the answer to
// an offer's direction (RFC 3264 §6.1: sendonly ↔ recvonly).
func (d Direction) Reverse() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	}
	return d
}

// CanSend reports whether media may be sent in this direction.
func (d Direction) CanSend() bool { return d == SendRecv || d == SendOnly }

// CanReceive reports whether received media is delivered in this direction.
func (d Direction) CanReceive() bool { return d == SendRecv || d == RecvOnly }
