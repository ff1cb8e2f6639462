package capture

import "bytes"

// DigestRedactedMarker is the marker a KeySafe sink writes once, before the
// first packet whose digest responses it replaced.
const DigestRedactedMarker = "digest responses (Authorization, Proxy-Authorization response=) are replaced by '*' in this capture"

// RedactDigestResponses returns payload with the response parameter of
// every Authorization and Proxy-Authorization header (RFC 3261 §22.4,
// §20.7, §20.28; RFC 7616 §3.4) replaced by KeyPlaceholder, byte for byte.
// With the nonce, realm and URI beside it, a digest response lets anyone
// holding the capture try passwords offline (an agent's REGISTER, a
// trunk's answer to a carrier's 407); without it the exchange is still
// there to debug. Folded header lines (RFC 3261 §7.3.1) are followed.
// payload itself is never modified: a copy is made when there is a
// response to hide, else payload is returned as it is.
func RedactDigestResponses(payload []byte) []byte {
	var out []byte
	inAuth := false
	for start := 0; start < len(payload); {
		end := bytes.IndexByte(payload[start:], '\n')
		if end < 0 {
			end = len(payload)
		} else {
			end += start
		}
		line := payload[start:end]
		switch {
		case len(line) > 0 && (line[0] == ' ' || line[0] == '\t'):
			// a continuation of the header before it
		case hasPrefixFold(line, "authorization:"), hasPrefixFold(line, "proxy-authorization:"):
			inAuth = true
		default:
			inAuth = false
		}
		if inAuth {
			out = redactResponseParams(payload, out, start, line)
		}
		start = end + 1
	}
	if out == nil {
		return payload
	}
	return out
}

// redactResponseParams blanks the value of each response= parameter of
// line (which starts at offset start of payload) in out, copying payload
// into out first if needed; it returns out.
func redactResponseParams(payload, out []byte, start int, line []byte) []byte {
	const name = "response="
	for k := 0; k+len(name) <= len(line); k++ {
		if !hasPrefixFold(line[k:], name) || k > 0 && !paramBoundary(line[k-1]) {
			continue
		}
		j := k + len(name)
		quoted := j < len(line) && line[j] == '"'
		if quoted {
			j++
		}
		for ; j < len(line) && line[j] != '\r'; j++ {
			c := line[j]
			if quoted && c == '"' || !quoted && (c == ',' || c == ' ' || c == '\t') {
				break
			}
			if out == nil {
				out = append([]byte(nil), payload...)
			}
			out[start+j] = KeyPlaceholder
		}
		k = j
	}
	return out
}

// paramBoundary reports whether c may precede a parameter name.
func paramBoundary(c byte) bool { return c == ' ' || c == '\t' || c == ',' || c == ':' }
