package fsutil

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a", "b.json")
	require.NoError(t, WriteFileAtomic(p, []byte("one"), 0o600))
	require.NoError(t, WriteFileAtomic(p, []byte("two"), 0o644))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "two", string(b))
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	ents, err := os.ReadDir(filepath.Dir(p))
	require.NoError(t, err)
	assert.Len(t, ents, 1, "no temporary file may remain")

	// A directory in the way makes the rename fail; nothing else is left.
	blocked := filepath.Join(dir, "blocked")
	require.NoError(t, os.MkdirAll(filepath.Join(blocked, "x"), 0o755))
	require.Error(t, WriteFileAtomic(blocked, []byte("x"), 0o644))
	ents, err = os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, ents, 2)
}

func TestReplaceDir(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "out")
	mk := func(name, content string) string {
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(p, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(p, "f"), []byte(content), 0o644))
		return p
	}
	require.NoError(t, ReplaceDir(mk("tmp1", "one"), dir))
	require.NoError(t, ReplaceDir(mk("tmp2", "two"), dir))
	b, err := os.ReadFile(filepath.Join(dir, "f"))
	require.NoError(t, err)
	assert.Equal(t, "two", string(b))
	ents, _ := os.ReadDir(root)
	assert.Len(t, ents, 1, "the old directory is removed")
	// A failed move puts the old directory back.
	require.Error(t, ReplaceDir(filepath.Join(root, "missing"), dir))
	b, err = os.ReadFile(filepath.Join(dir, "f"))
	require.NoError(t, err)
	assert.Equal(t, "two", string(b))
}

func TestCheckCreatable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	tests := []struct {
		path string
		want string // "" for nil
	}{
		{filepath.Join(dir, "new"), ""},
		{filepath.Join(dir, "a", "b", "new"), ""},
		{file, ""}, // replacing the file itself is the caller's question
		{filepath.Join(file, "new"), `"` + file + `" is not a directory`},
		{filepath.Join(file, "a", "new"), `"` + file + `" is not a directory`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			err := CheckCreatable(tt.path)
			if tt.want == "" {
				require.NoError(t, err)
			} else {
				require.EqualError(t, err, tt.want)
			}
			ents, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Len(t, ents, 1, "the probe leaves nothing behind")
		})
	}
	t.Run("read-only directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root may write into a read-only directory (internal/model tries /sys)")
		}
		ro := filepath.Join(t.TempDir(), "ro")
		require.NoError(t, os.Mkdir(ro, 0o555))
		require.EqualError(t, CheckCreatable(filepath.Join(ro, "x")), `cannot create files in "`+ro+`": permission denied`)
	})
}

func TestHoldsWorkingDir(t *testing.T) {
	root := t.TempDir()
	wd := filepath.Join(root, "a", "b")
	require.NoError(t, os.MkdirAll(wd, 0o755))
	t.Chdir(wd)
	for path, want := range map[string]bool{
		".": true, "..": true, wd: true, root: true, "/": true,
		"x": false, filepath.Join(root, "a", "c"): false, "../c": false,
	} {
		got, err := HoldsWorkingDir(path)
		require.NoError(t, err)
		assert.Equal(t, want, got, path)
	}
}

func TestIsMountPoint(t *testing.T) {
	assert.True(t, IsMountPoint("/"))
	assert.False(t, IsMountPoint(t.TempDir()))
	assert.False(t, IsMountPoint(filepath.Join(t.TempDir(), "missing")))
	if st, err := os.Stat("/proc/self"); err == nil && st.IsDir() {
		assert.True(t, IsMountPoint("/proc"))
	}
}
