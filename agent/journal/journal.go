// Package journal is the graygw agent's persistent record of its P4Runtime state:
// a snapshot file plus an append-only log of records, both in one directory. The
// agent appends a record before it changes the dataplane (write-ahead), so after a
// crash the journal replays to a state the dataplane can be brought to.
//
// Records are opaque byte strings framed as
//
//	length uint32 LE | CRC32-C of payload uint32 LE | payload
//
// A torn record at the end of the log (the process died inside write(2)) is cut
// off on Open. Appends are not fsynced by default: the journal has to survive the
// agent's death, not the machine's, because the pinned BPF maps it describes live
// in kernel memory and die with the machine. A generation string (the kernel boot
// id) recorded in both files makes Open discard a journal written before a reboot.
//
// Compaction writes a new snapshot to a temporary file, renames it into place and
// starts a new log. Both files carry an epoch; a log whose epoch differs from the
// snapshot's was already folded into it (a crash between the two renames) and is
// ignored.
package journal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// File names inside the journal directory.
const (
	SnapshotFile = "snapshot"
	LogFile      = "log"
)

const (
	magic     = "graygw-agent-journal/1"
	maxRecord = 1 << 30
)

// Sentinel errors.
var (
	// ErrCorrupt: a snapshot record, or a log record before the last one, fails
	// its checksum or framing. The journal cannot be trusted.
	ErrCorrupt = errors.New("journal: corrupt")
	// ErrClosed: the journal was closed.
	ErrClosed = errors.New("journal: closed")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options configure Open.
type Options struct {
	// Generation identifies the lifetime of the state the journal describes (the
	// kernel boot id for pinned BPF maps). A journal written under another
	// generation is discarded. Empty matches only an empty generation.
	Generation string
	// Sync makes every Append fsync the log.
	Sync bool
}

// Replayed says what Open found.
type Replayed struct {
	// Records is the number of records passed to the replay function.
	Records int
	// Discarded is non-empty when an existing journal was thrown away, and says why.
	Discarded string
	// TornBytes is the size of the torn tail cut from the log.
	TornBytes int64
}

// Journal is an open journal. Its methods must not be called concurrently.
type Journal struct {
	dir     string
	opts    Options
	epoch   uint64
	log     *os.File
	logSize int64 // bytes of records in the log (header excluded)
	snap    int64 // bytes of records in the snapshot
}

// Open opens (creating if needed) the journal in dir and passes every record, the
// snapshot's first and then the log's, to replay in order. If replay fails Open
// fails with its error.
func Open(dir string, opts Options, replay func(rec []byte) error) (*Journal, Replayed, error) {
	var rep Replayed
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, rep, fmt.Errorf("journal: %w", err)
	}
	j := &Journal{dir: dir, opts: opts}

	snapEpoch, snapRecs, err := readFile(filepath.Join(dir, SnapshotFile), false)
	switch {
	case errors.Is(err, os.ErrNotExist):
		snapEpoch, snapRecs = 0, nil
	case errors.Is(err, errGeneration):
		rep.Discarded = err.Error()
		snapEpoch, snapRecs = 0, nil
	case err != nil:
		return nil, rep, err
	}
	if rep.Discarded == "" && snapRecs != nil && snapRecs.gen != opts.Generation {
		rep.Discarded = fmt.Sprintf("written under generation %q, now %q", snapRecs.gen, opts.Generation)
		snapEpoch, snapRecs = 0, nil
	}
	logEpoch, logRecs, err := readFile(filepath.Join(dir, LogFile), true)
	switch {
	case errors.Is(err, os.ErrNotExist):
		logRecs = nil
	case err != nil:
		return nil, rep, err
	}
	if logRecs != nil && logRecs.gen != opts.Generation {
		if rep.Discarded == "" {
			rep.Discarded = fmt.Sprintf("log written under generation %q, now %q", logRecs.gen, opts.Generation)
		}
		logRecs = nil
	}
	if rep.Discarded != "" {
		snapEpoch, snapRecs, logRecs = 0, nil, nil
	}
	if logRecs != nil && logEpoch != snapEpoch {
		// Folded into the snapshot before a crash between the renames.
		logRecs = nil
	}

	if snapRecs != nil {
		for _, r := range snapRecs.recs {
			if err := replay(r); err != nil {
				return nil, rep, err
			}
			rep.Records++
			j.snap += int64(8 + len(r))
		}
	}
	j.epoch = snapEpoch
	if snapRecs == nil {
		// No usable snapshot: write an empty one for this generation, so the
		// log's epoch has something to match.
		j.epoch = snapEpoch + 1
		if err := j.writeSnapshot(nil); err != nil {
			return nil, rep, err
		}
	}
	if logRecs != nil {
		for _, r := range logRecs.recs {
			if err := replay(r); err != nil {
				return nil, rep, err
			}
			rep.Records++
			j.logSize += int64(8 + len(r))
		}
		rep.TornBytes = logRecs.torn
		f, err := os.OpenFile(filepath.Join(dir, LogFile), os.O_RDWR, 0o600)
		if err != nil {
			return nil, rep, fmt.Errorf("journal: %w", err)
		}
		if err := f.Truncate(logRecs.end); err != nil {
			f.Close()
			return nil, rep, fmt.Errorf("journal: cut torn tail: %w", err)
		}
		if _, err := f.Seek(logRecs.end, io.SeekStart); err != nil {
			f.Close()
			return nil, rep, fmt.Errorf("journal: %w", err)
		}
		j.log = f
	} else if err := j.newLog(); err != nil {
		return nil, rep, err
	}
	return j, rep, nil
}

var errGeneration = errors.New("journal: unreadable header")

type fileRecs struct {
	gen  string
	recs [][]byte
	end  int64 // offset after the last good record
	torn int64
}

func header(gen string, epoch uint64) []byte {
	return []byte(magic + " " + strconv.FormatUint(epoch, 10) + " " + strconv.Quote(gen) + "\n")
}

// readFile reads a journal file. A bad record is ErrCorrupt, unless tolerateTail
// and it is the last thing in the file (a torn append).
func readFile(path string, tolerateTail bool) (uint64, *fileRecs, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, nil, fmt.Errorf("journal: %w", err)
	}
	br := bufio.NewReaderSize(f, 1<<20)
	line, err := br.ReadString('\n')
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %s: %w", errGeneration, path, err)
	}
	fields := strings.SplitN(strings.TrimSuffix(line, "\n"), " ", 3)
	if len(fields) != 3 || fields[0] != magic {
		return 0, nil, fmt.Errorf("%w: %s: not a journal file", errGeneration, path)
	}
	epoch, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %s: epoch: %w", errGeneration, path, err)
	}
	gen, err := strconv.Unquote(fields[2])
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %s: generation: %w", errGeneration, path, err)
	}
	out := &fileRecs{gen: gen, recs: [][]byte{}, end: int64(len(line))}
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return epoch, out, nil
			}
			return bad(epoch, out, st.Size(), tolerateTail, path, "short record header")
		}
		n := binary.LittleEndian.Uint32(hdr[:4])
		sum := binary.LittleEndian.Uint32(hdr[4:])
		if n > maxRecord || out.end+8+int64(n) > st.Size() {
			return bad(epoch, out, st.Size(), tolerateTail, path, "record past end of file")
		}
		rec := make([]byte, n)
		if _, err := io.ReadFull(br, rec); err != nil {
			return bad(epoch, out, st.Size(), tolerateTail, path, "short record")
		}
		if crc32.Checksum(rec, castagnoli) != sum {
			return bad(epoch, out, st.Size(), tolerateTail, path, "checksum mismatch")
		}
		out.recs = append(out.recs, rec)
		out.end += 8 + int64(n)
	}
}

func bad(epoch uint64, out *fileRecs, size int64, tolerateTail bool, path, why string) (uint64, *fileRecs, error) {
	// A torn append can only damage the last record: whatever follows the bad
	// point must fit in one record.
	if tolerateTail {
		out.torn = size - out.end
		return epoch, out, nil
	}
	return 0, nil, fmt.Errorf("%w: %s at offset %d: %s", ErrCorrupt, path, out.end, why)
}

func frame(buf []byte, rec []byte) []byte {
	var hdr [8]byte
	binary.LittleEndian.PutUint32(hdr[:4], uint32(len(rec)))
	binary.LittleEndian.PutUint32(hdr[4:], crc32.Checksum(rec, castagnoli))
	return append(append(buf, hdr[:]...), rec...)
}

// Append writes recs to the log in one write(2).
func (j *Journal) Append(recs ...[]byte) error {
	if j.log == nil {
		return ErrClosed
	}
	var buf []byte
	for _, r := range recs {
		if len(r) > maxRecord {
			return fmt.Errorf("journal: record of %d bytes is too large", len(r))
		}
		buf = frame(buf, r)
	}
	if _, err := j.log.Write(buf); err != nil {
		return fmt.Errorf("journal: append: %w", err)
	}
	if j.opts.Sync {
		if err := j.log.Sync(); err != nil {
			return fmt.Errorf("journal: sync: %w", err)
		}
	}
	j.logSize += int64(len(buf))
	return nil
}

// LogSize is the number of record bytes in the log since the last compaction.
func (j *Journal) LogSize() int64 { return j.logSize }

// SnapshotSize is the number of record bytes in the snapshot.
func (j *Journal) SnapshotSize() int64 { return j.snap }

// Compact replaces the snapshot with the records write emits and empties the log.
// write must emit the whole state: everything appended so far is dropped.
func (j *Journal) Compact(write func(emit func(rec []byte) error) error) error {
	if j.log == nil {
		return ErrClosed
	}
	j.epoch++
	if err := j.writeSnapshot(write); err != nil {
		j.epoch--
		return err
	}
	old := j.log
	if err := j.newLog(); err != nil {
		return err
	}
	old.Close()
	return nil
}

// writeSnapshot writes the snapshot of the current epoch atomically.
func (j *Journal) writeSnapshot(write func(emit func(rec []byte) error) error) error {
	path := filepath.Join(j.dir, SnapshotFile)
	tmp, err := os.CreateTemp(j.dir, SnapshotFile+".tmp*")
	if err != nil {
		return fmt.Errorf("journal: snapshot: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	bw := bufio.NewWriterSize(tmp, 1<<20)
	var size int64
	_, err = bw.Write(header(j.opts.Generation, j.epoch))
	if err == nil && write != nil {
		var buf []byte
		err = write(func(rec []byte) error {
			buf = frame(buf[:0], rec)
			size += int64(len(buf))
			_, werr := bw.Write(buf)
			return werr
		})
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = syncDir(j.dir)
	}
	if err != nil {
		return fmt.Errorf("journal: snapshot: %w", err)
	}
	j.snap = size
	return nil
}

// newLog starts an empty log for the current epoch (atomically replacing the old).
func (j *Journal) newLog() error {
	tmp, err := os.CreateTemp(j.dir, LogFile+".tmp*")
	if err != nil {
		return fmt.Errorf("journal: log: %w", err)
	}
	h := header(j.opts.Generation, j.epoch)
	if _, err := tmp.Write(h); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("journal: log: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(j.dir, LogFile)); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("journal: log: %w", err)
	}
	if err := syncDir(j.dir); err != nil {
		tmp.Close()
		return fmt.Errorf("journal: log: %w", err)
	}
	j.log, j.logSize = tmp, 0
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close closes the log.
func (j *Journal) Close() error {
	if j.log == nil {
		return ErrClosed
	}
	err := j.log.Close()
	j.log = nil
	return err
}

// BootID returns the kernel's boot id (/proc/sys/kernel/random/boot_id), the
// natural Generation for a journal of pinned BPF maps; "" when unavailable.
func BootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
