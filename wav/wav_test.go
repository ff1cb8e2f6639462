package wav

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

var stereo = Info{Format: PCM, Channels: 2, SampleRate: 8000, BitsPerSample: 16}

// file returns a canonical WAV of info's shape holding audio.
func file(info Info, audio []byte) []byte {
	b := make([]byte, HeaderSize, HeaderSize+len(audio))
	PutHeader(b, info, uint32(len(audio)))
	return append(b, audio...)
}

func TestPutHeaderDecodesBack(t *testing.T) {
	audio := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	b := file(stereo, audio)
	if got := binary.LittleEndian.Uint32(b[4:]); got != uint32(len(b)-8) {
		t.Errorf("RIFF size %d, want %d", got, len(b)-8)
	}
	if got := binary.LittleEndian.Uint32(b[28:]); got != 8000*4 {
		t.Errorf("byte rate %d, want 32000", got)
	}
	info, data, err := Decode(b)
	if err != nil || info != stereo || !bytes.Equal(data, audio) {
		t.Fatalf("Decode = %+v, %v, %v", info, data, err)
	}
	info, r, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil || info != stereo {
		t.Fatalf("Open = %+v, %v", info, err)
	}
	got, _ := io.ReadAll(r)
	if !bytes.Equal(got, audio) {
		t.Fatalf("Open's data reader gave %v, want %v", got, audio)
	}
}

// The data reader ends where the data chunk does, whatever follows it.
func TestOpenStopsAtTheDataChunk(t *testing.T) {
	b := file(stereo, []byte{9, 9, 9, 9})
	b = append(b, "LIST"...)
	b = binary.LittleEndian.AppendUint32(b, 4)
	b = append(b, "abcd"...)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	_, r, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(r); !bytes.Equal(got, []byte{9, 9, 9, 9}) {
		t.Fatalf("read %q past the data chunk", got)
	}
}

func TestBadFiles(t *testing.T) {
	good := file(stereo, make([]byte, 16))
	trunc := append([]byte(nil), good[:len(good)-4]...)
	overrun := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(overrun[16:], 1<<30) // fmt chunk claims 1 GiB
	dataFirst := append([]byte(nil), good[:12]...)
	dataFirst = append(dataFirst, good[36:]...)
	dataFirst = append(dataFirst, good[12:36]...)
	shortFmt := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(shortFmt[16:], 8)
	for name, b := range map[string][]byte{
		"empty": nil, "not riff": []byte("RIFX....WAVEfmt "), "truncated data": trunc,
		"chunk overruns": overrun, "data before fmt": dataFirst, "short fmt": shortFmt,
		"no data": good[:36],
	} {
		if _, _, err := Decode(b); !errors.Is(err, ErrBad) {
			t.Errorf("%s: Decode err = %v, want ErrBad", name, err)
		}
		if _, _, err := Open(bytes.NewReader(b), int64(len(b))); !errors.Is(err, ErrBad) {
			t.Errorf("%s: Open err = %v, want ErrBad", name, err)
		}
	}
}

// FuzzDecode: no input panics, allocates beyond itself or yields a data
// chunk outside the file.
func FuzzDecode(f *testing.F) {
	f.Add(file(stereo, make([]byte, 8)))
	f.Add(file(Info{Format: PCM, Channels: 1, SampleRate: 8000, BitsPerSample: 16}, []byte{1, 2}))
	f.Add([]byte("RIFF\x04\x00\x00\x00WAVE"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, data, err := Decode(b)
		if err == nil && len(data) > len(b) {
			t.Fatalf("data chunk of %d bytes from a %d-byte file", len(data), len(b))
		}
		_, r, err := Open(bytes.NewReader(b), int64(len(b)))
		if err == nil {
			n, _ := io.Copy(io.Discard, r)
			if n > int64(len(b)) {
				t.Fatalf("read %d bytes of data from a %d-byte file", n, len(b))
			}
		}
	})
}
