package dirlock

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestSecondLockFailsUntilReleased(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // Acquire creates it
	first, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file, so a second open in this process conflicts.
	if _, err := Acquire(dir); err == nil {
		t.Fatal("second lock on a locked directory succeeded")
	} else {
		var inUse *InUseError
		if !errors.As(err, &inUse) {
			t.Fatalf("error %v (%T) is not an *InUseError", err, err)
		}
		if inUse.PID != os.Getpid() {
			t.Errorf("holder pid %d, want %d", inUse.PID, os.Getpid())
		}
		for _, want := range []string{dir, "pid " + strconv.Itoa(os.Getpid()), "failed to acquire lock on file .lock"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if err := first.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	again, err := Acquire(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	defer again.Release()
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		t.Fatal(err)
	}
}

func TestInUseErrorNamesTheHolder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		want    string
	}{
		{"pid written", "4242\n", "/d is in use by another Samsa process (pid 4242): failed to acquire lock on file .lock in /d"},
		{"empty file", "", "/d is in use by another Samsa process: failed to acquire lock on file .lock in /d"},
		{"garbage", "not a pid", "/d is in use by another Samsa process: failed to acquire lock on file .lock in /d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			err := &InUseError{Dir: "/d", PID: readPID(path)}
			if err.Error() != tc.want {
				t.Errorf("got %q, want %q", err, tc.want)
			}
		})
	}
}

func TestAcquireFailsOnAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err := Acquire(file); err == nil {
		l.Release()
		t.Fatal("locked a path that is a regular file")
	}
}
