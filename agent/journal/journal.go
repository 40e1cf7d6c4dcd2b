// Package journal is the graygw agent's persistent record of its P4Runtime state:
// a snapshot file plus an append-only log of records, both in one directory. The
// agent appends a record before it changes the dataplane (write-ahead), so after a
// crash the journal replays to a state the dataplane can be brought to.
//
// Both files start with a header line (magic, epoch, generation, CRC-32C of the
// line). Records are opaque byte strings framed as
//
//	length uint32 LE | CRC-32C of payload uint32 LE | payload
//
// The log keeps, right after its header, a commit mark: the offset where its
// acknowledged records end (uint64 LE) and the mark's CRC-32C. Append writes the
// records, then the mark, and only then returns, so everything before the mark was
// acknowledged and nothing after it was. That is how Open tells a torn tail from
// corruption: bytes past the mark are an append that never returned (the process
// died inside it) and are cut; a bad record, a bad header or a file shorter than
// its mark is corruption, and Open refuses with ErrCorrupt naming the file and the
// offset, instead of presenting an older state as the current one. The snapshot
// ends with a trailer (its record bytes and a CRC) so a cut snapshot is caught too.
//
// A failed append (ENOSPC) is truncated back, so no partial record stays in the log
// ahead of later appends; if even that fails the journal refuses every later append.
//
// Appends are not fsynced by default: the journal has to survive the agent's
// death, not the machine's, because the pinned BPF maps it describes live in
// kernel memory and die with the machine. A generation string (the kernel boot id)
// recorded in both files makes Open discard a journal written before a reboot.
//
// Compaction writes a new snapshot to a temporary file, renames it into place and
// starts a new log. Both files carry an epoch; a log whose epoch is older than the
// snapshot's was already folded into it (a crash between the two renames) and is
// ignored; a log newer than its snapshot is corruption.
//
// Files of the first format (graygw-agent-journal/1: no header CRC, no commit mark,
// no trailer) are still read, with that format's weaker torn-tail rule, and
// rewritten in the current format at once.
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
	"time"
)

// File names inside the journal directory.
const (
	SnapshotFile = "snapshot"
	LogFile      = "log"
)

const (
	magic   = "graygw-agent-journal/2"
	magicV1 = "graygw-agent-journal/1"
	// maxRecord bounds one record; trailerMark (a length no record has) starts the
	// snapshot's trailer.
	maxRecord   = 1 << 30
	trailerMark = 0xffffffff
	markSize    = 12 // commit mark: end uint64 LE | CRC-32C uint32 LE
	trailerSize = 16 // trailerMark uint32 | record bytes uint64 | CRC-32C uint32
)

// Sentinel errors.
var (
	// ErrCorrupt: a journal file fails its checksums or framing anywhere but in an
	// unacknowledged tail, or the files contradict each other. The journal cannot
	// be trusted; Open names the file and the offset.
	ErrCorrupt = errors.New("journal: corrupt")
	// ErrClosed: the journal was closed.
	ErrClosed = errors.New("journal: closed")
	// ErrBroken: an append failed and could not be undone; the journal refuses
	// appends until it is reopened (which cuts the unacknowledged bytes).
	ErrBroken = errors.New("journal: broken by a failed append")
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
	// TornBytes is the size of the unacknowledged tail cut from the log.
	TornBytes int64
	// Upgraded is true when files of the first format were rewritten.
	Upgraded bool
}

// Journal is an open journal. Its methods must not be called concurrently.
type Journal struct {
	dir     string
	opts    Options
	epoch   uint64
	log     *os.File
	markOff int64 // offset of the log's commit mark
	end     int64 // offset where the log's acknowledged records end
	logSize int64 // bytes of records in the log (header and mark excluded)
	snap    int64 // bytes of records in the snapshot
	broken  error // set when a failed append could not be undone
}

// Open opens (creating if needed) the journal in dir and passes every record, the
// snapshot's first and then the log's, to replay in order. If replay fails Open
// fails with its error. A corrupt journal is an error wrapping ErrCorrupt: Open
// then changes nothing in dir.
func Open(dir string, opts Options, replay func(rec []byte) error) (*Journal, Replayed, error) {
	var rep Replayed
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, rep, fmt.Errorf("journal: %w", err)
	}
	j := &Journal{dir: dir, opts: opts}

	snap, err := readFile(filepath.Join(dir, SnapshotFile), false)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, rep, err
	}
	log, err := readFile(filepath.Join(dir, LogFile), true)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, rep, err
	}
	switch {
	case snap != nil && snap.gen != opts.Generation:
		rep.Discarded = fmt.Sprintf("written under generation %q, now %q", snap.gen, opts.Generation)
	case log != nil && log.gen != opts.Generation:
		rep.Discarded = fmt.Sprintf("log written under generation %q, now %q", log.gen, opts.Generation)
	case snap == nil && log != nil && len(log.recs) > 0:
		return nil, rep, fmt.Errorf("%w: %s holds %d records but the snapshot is missing",
			ErrCorrupt, log.path, len(log.recs))
	case snap != nil && log == nil && len(snap.recs) > 0:
		return nil, rep, fmt.Errorf("%w: %s holds %d records but the log is missing",
			ErrCorrupt, snap.path, len(snap.recs))
	case snap != nil && log != nil && log.epoch > snap.epoch:
		return nil, rep, fmt.Errorf("%w: %s is of epoch %d, newer than the snapshot's %d (an older snapshot put back?)",
			ErrCorrupt, log.path, log.epoch, snap.epoch)
	}
	if rep.Discarded != "" {
		snap, log = nil, nil
	}
	if log != nil && snap != nil && log.epoch < snap.epoch {
		log = nil // folded into the snapshot before a crash between the renames
	}

	var recs [][]byte
	if snap != nil {
		j.epoch = snap.epoch
		recs = append(recs, snap.recs...)
	}
	if log != nil {
		recs = append(recs, log.recs...)
		rep.TornBytes = log.torn
	}
	for _, r := range recs {
		if err := replay(r); err != nil {
			return nil, rep, err
		}
		rep.Records++
	}

	// Files of the first format, and a fresh directory, get a new snapshot (the
	// records read so far, replay being sequential) and a new log.
	if snap == nil || snap.v1 || (log != nil && log.v1) {
		rep.Upgraded = snap != nil
		j.epoch++
		if err := j.writeSnapshot(func(emit func([]byte) error) error {
			for _, r := range recs {
				if err := emit(r); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return nil, rep, err
		}
		if err := j.newLog(); err != nil {
			return nil, rep, err
		}
		return j, rep, nil
	}
	j.snap = snap.size
	if log == nil {
		if err := j.newLog(); err != nil {
			return nil, rep, err
		}
		return j, rep, nil
	}
	f, err := os.OpenFile(log.path, os.O_RDWR, 0o600)
	if err != nil {
		return nil, rep, fmt.Errorf("journal: %w", err)
	}
	if log.torn > 0 {
		if err := f.Truncate(log.end); err != nil {
			f.Close()
			return nil, rep, fmt.Errorf("journal: cut torn tail of %s: %w", log.path, err)
		}
	}
	j.log, j.markOff, j.end, j.logSize = f, log.markOff, log.end, log.size
	return j, rep, nil
}

// fileRecs is what readFile found in a journal file.
type fileRecs struct {
	path    string
	v1      bool
	epoch   uint64
	gen     string
	recs    [][]byte
	size    int64 // record bytes (framing included)
	markOff int64 // log: offset of the commit mark
	end     int64 // offset after the last acknowledged record
	torn    int64 // log: bytes past end
}

func header(gen string, epoch uint64) []byte {
	line := magic + " " + strconv.FormatUint(epoch, 10) + " " + strconv.Quote(gen)
	return []byte(fmt.Sprintf("%s %08x\n", line, crc32.Checksum([]byte(line), castagnoli)))
}

func commitMark(end int64) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(end))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func trailer(size int64) []byte {
	b := binary.LittleEndian.AppendUint32(nil, trailerMark)
	b = binary.LittleEndian.AppendUint64(b, uint64(size))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// readFile reads a journal file: the snapshot, or with isLog the log.
func readFile(path string, isLog bool) (*fileRecs, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	corrupt := func(off int64, format string, args ...any) (*fileRecs, error) {
		return nil, fmt.Errorf("%w: %s at offset %d: %s", ErrCorrupt, path, off, fmt.Sprintf(format, args...))
	}
	br := bufio.NewReaderSize(f, 1<<20)
	line, err := br.ReadString('\n')
	if err != nil || len(line) > 4096 {
		return corrupt(0, "no header line")
	}
	out := &fileRecs{path: path, recs: [][]byte{}, end: int64(len(line))}
	body := strings.TrimSuffix(line, "\n")
	if v1, ok := strings.CutPrefix(body, magicV1+" "); ok {
		out.v1 = true
		body = v1
	} else {
		rest, ok := strings.CutPrefix(body, magic+" ")
		i := strings.LastIndexByte(rest, ' ')
		if !ok || i < 0 {
			return corrupt(0, "not a graygw agent journal header")
		}
		sum, err := strconv.ParseUint(rest[i+1:], 16, 32)
		if err != nil || uint32(sum) != crc32.Checksum([]byte(body[:len(magic)+1+i]), castagnoli) {
			return corrupt(0, "header checksum mismatch")
		}
		body = rest[:i]
	}
	ep, gen, ok := strings.Cut(body, " ")
	if out.epoch, err = strconv.ParseUint(ep, 10, 64); err != nil || !ok {
		return corrupt(0, "header epoch %q", ep)
	}
	if out.gen, err = strconv.Unquote(gen); err != nil {
		return corrupt(0, "header generation %q", gen)
	}

	limit := st.Size() // where acknowledged records end
	if isLog && !out.v1 {
		var m [markSize]byte
		if _, err := io.ReadFull(br, m[:]); err != nil {
			return corrupt(out.end, "no commit mark")
		}
		if binary.LittleEndian.Uint32(m[8:]) != crc32.Checksum(m[:8], castagnoli) {
			return corrupt(out.end, "commit mark checksum mismatch")
		}
		out.markOff = out.end
		out.end += markSize
		limit = int64(binary.LittleEndian.Uint64(m[:8]))
		if limit < out.end {
			return corrupt(out.markOff, "commit mark %d points into the header", limit)
		}
		if limit > st.Size() {
			return corrupt(st.Size(), "the log ends here but its acknowledged records end at %d (the file was cut)", limit)
		}
		out.torn = st.Size() - limit
	}
	var hdr [8]byte
	for {
		if out.end == limit && (isLog || out.v1) {
			return out, nil
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if out.v1 && isLog {
				out.torn = st.Size() - out.end // the first format's rule: any bad tail is torn
				return out, nil
			}
			if errors.Is(err, io.EOF) && out.v1 {
				return out, nil
			}
			return corrupt(out.end, "short record header")
		}
		n := binary.LittleEndian.Uint32(hdr[:4])
		sum := binary.LittleEndian.Uint32(hdr[4:])
		if !isLog && !out.v1 && n == trailerMark {
			var rest [trailerSize - 8]byte
			if _, err := io.ReadFull(br, rest[:]); err != nil {
				return corrupt(out.end, "short trailer")
			}
			t := append(hdr[:], rest[:]...)
			if binary.LittleEndian.Uint32(t[12:]) != crc32.Checksum(t[:12], castagnoli) ||
				int64(binary.LittleEndian.Uint64(t[4:12])) != out.size {
				return corrupt(out.end, "trailer mismatch (records cut or added)")
			}
			if out.end+trailerSize != st.Size() {
				return corrupt(out.end+trailerSize, "bytes after the trailer")
			}
			return out, nil
		}
		if n > maxRecord || out.end+8+int64(n) > limit {
			if out.v1 && isLog {
				out.torn = st.Size() - out.end
				return out, nil
			}
			return corrupt(out.end, "record of %d bytes runs past the acknowledged end %d", n, limit)
		}
		rec := make([]byte, n)
		if _, err := io.ReadFull(br, rec); err != nil {
			return corrupt(out.end, "short record")
		}
		if crc32.Checksum(rec, castagnoli) != sum {
			if out.v1 && isLog {
				out.torn = st.Size() - out.end
				return out, nil
			}
			return corrupt(out.end, "record checksum mismatch")
		}
		out.recs = append(out.recs, rec)
		out.end += 8 + int64(n)
		out.size += 8 + int64(n)
	}
}

func frame(buf []byte, rec []byte) []byte {
	var hdr [8]byte
	binary.LittleEndian.PutUint32(hdr[:4], uint32(len(rec)))
	binary.LittleEndian.PutUint32(hdr[4:], crc32.Checksum(rec, castagnoli))
	return append(append(buf, hdr[:]...), rec...)
}

// Append writes recs to the log in one write(2), then moves the commit mark past
// them. When it returns nil the records are acknowledged: Open replays them or
// refuses the journal. When it fails nothing of recs stays in the log.
func (j *Journal) Append(recs ...[]byte) error {
	if j.log == nil {
		return ErrClosed
	}
	if j.broken != nil {
		return fmt.Errorf("%w: %w", ErrBroken, j.broken)
	}
	var buf []byte
	for _, r := range recs {
		if len(r) > maxRecord {
			return fmt.Errorf("journal: record of %d bytes is too large", len(r))
		}
		buf = frame(buf, r)
	}
	end := j.end + int64(len(buf))
	_, err := j.log.WriteAt(buf, j.end)
	if err == nil {
		_, err = j.log.WriteAt(commitMark(end), j.markOff)
	}
	if err == nil && j.opts.Sync {
		err = j.log.Sync()
	}
	if err != nil {
		// Undo: the mark was not moved (or is rewritten here), and the bytes past
		// it go, so a later append does not sit behind a partial record.
		_, merr := j.log.WriteAt(commitMark(j.end), j.markOff)
		if terr := j.log.Truncate(j.end); terr != nil || merr != nil {
			j.broken = errors.Join(err, merr, terr)
		}
		return fmt.Errorf("journal: append: %w", err)
	}
	j.end = end
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
		// The snapshot of the new epoch is in place: an append to the old log
		// (of the previous epoch) would be ignored at the next Open. Refuse
		// appends until a restart, which starts a log of the right epoch.
		j.broken = err
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
			if len(rec) > maxRecord {
				return fmt.Errorf("record of %d bytes is too large", len(rec))
			}
			buf = frame(buf[:0], rec)
			size += int64(len(buf))
			_, werr := bw.Write(buf)
			return werr
		})
	}
	if err == nil {
		_, err = bw.Write(trailer(size))
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
	end := int64(len(h)) + markSize
	if _, err := tmp.Write(append(h, commitMark(end)...)); err != nil {
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
	j.log, j.logSize, j.markOff, j.end, j.broken = tmp, 0, int64(len(h)), end, nil
	return nil
}

// SetAside renames the journal files in dir (a corrupt journal, kept for
// inspection) to NAME.corrupt-TIMESTAMP, so that the next Open starts without a
// journal. It returns the new paths.
func SetAside(dir string, now time.Time) ([]string, error) {
	var moved []string
	for _, name := range []string{SnapshotFile, LogFile} {
		from := filepath.Join(dir, name)
		to := fmt.Sprintf("%s.corrupt-%s", from, now.UTC().Format("20060102T150405Z"))
		if err := os.Rename(from, to); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return moved, fmt.Errorf("journal: set aside: %w", err)
		}
		moved = append(moved, to)
	}
	return moved, syncDir(dir)
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
