// Package recorder records one interaction as one stereo WAV file (8 kHz,
// 16-bit linear PCM; caller on the left channel, agent or IVR on the right)
// with a signed JSON sidecar beside it.
//
// It is built for the RTP hot path. WriteCaller and WriteAgent copy a frame
// into a buffer taken from a process-wide pool and link it to the
// recording's queue, holding the recording's queue lock only for that
// append; they never wait for the disk or the writer and, once the pool is
// warm, allocate nothing. A recording may have at most Config.QueueFrames
// frames queued: when the writer falls that far behind, further frames are
// dropped and counted (Stats.Dropped); the call goes on.
//
// There is no goroutine per recording. One writer goroutine serves every
// recording in the process: the first New starts it and it exits when no
// recording is left open. It drains each recording every 200 ms
// (drainInterval), the recordings spread over the interval in phases so
// that its work, and the frames waiting for it, are even over time. A turn
// places the recording's queued frames on its timeline with buffers that
// belong to the writer and writes the result to the file in one write.
// Between turns an open recording holds only its state, its file, the
// frames queued since its last turn and the samples one channel has run
// ahead of the other. Close drains what is still queued itself. A write
// that blocks (a stalled disk) holds up the writer's turns on every
// recording, whose frames are dropped once their queues are full; it never
// blocks a hand-over, nor the Close of another recording.
//
// Each frame is stamped with the recorder's clock when it is handed over and
// placed on a common timeline by that time, so gaps (lost packets, dropped
// frames, a leg that sends nothing) become silence and the file lasts as long
// as the recording did.
//
// Pause and Resume take a Reason. The pause state is read when a frame is
// handed over, in the caller's goroutine: a frame handed over after Pause
// returned is written as silence even if older frames are still queued. Every
// pause interval is kept as a Marker in the sidecar.
//
// The WAV and the sidecar are written under temporary names (".NAME.wav.part",
// ".NAME.json.part") in the destination directory, fsynced, and renamed when
// complete, so a crash never leaves a half file under a final name. The
// sidecar part is written at New (a provisional sidecar: call, start, pause
// markers) and reserves the space the final one needs. Recover, run at
// start-up, repairs what a crash left (or quarantines it) into a signed
// recording marked StatusRecovered. A write error (disk full) is reported
// at once (Config.OnFailure) and Close keeps what was written, marked
// StatusTruncated. Verify checks a finished recording against its
// sidecar's SHA-256 and HMAC.
//
// The package knows nothing of archives, calls or configuration files: the
// caller decides the directory, the base name, the key and the policy.
package recorder
