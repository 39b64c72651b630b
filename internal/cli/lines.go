package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kgo"
)

// LineReader reads newline-terminated lines of any length. A trailing "\r" is dropped with
// the "\n", so CRLF input works; a last line without a newline is still returned.
type LineReader struct {
	r *bufio.Reader
}

// NewLineReader returns a LineReader over r.
func NewLineReader(r io.Reader) *LineReader {
	return &LineReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next line without its terminator, a copy the caller may keep. It returns
// io.EOF once the input is exhausted.
func (lr *LineReader) Next() ([]byte, error) {
	line, err := lr.r.ReadBytes('\n')
	if len(line) == 0 {
		if err == nil {
			err = io.EOF
		}
		if !errors.Is(err, io.EOF) {
			err = fmt.Errorf("read input: %w", err)
		}
		return nil, err
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read input: %w", err)
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, nil
}

// RecordFromLine turns one input line into a record value. With a non-empty separator the
// line is split at the first occurrence: the part before is the key, the rest the value; a
// line without the separator becomes a record with a null key. headers are shared by every
// record and must not be modified afterwards.
func RecordFromLine(line []byte, separator string, headers []kgo.RecordHeader) *kgo.Record {
	r := &kgo.Record{Value: line, Headers: headers}
	if separator != "" {
		if k, v, ok := bytes.Cut(line, []byte(separator)); ok {
			r.Key, r.Value = k, v
		}
	}
	return r
}
