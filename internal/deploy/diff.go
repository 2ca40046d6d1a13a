package deploy

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// diffObjects is a unified diff between the live object (nil when it does not
// exist) and the object as a server-side dry run would leave it, with the fields
// the server manages (status, resourceVersion, managedFields, ...) left out, as
// `kubectl diff` shows it.
func diffObjects(live, applied *unstructured.Unstructured) string {
	name := objectName(applied)
	a, b := "", clean(applied)
	if live != nil {
		a = clean(live)
	}
	if a == b {
		return ""
	}
	return unified(strings.SplitAfter(a, "\n"), strings.SplitAfter(b, "\n"), "live/"+name, "applied/"+name)
}

func clean(o *unstructured.Unstructured) string {
	c := o.DeepCopy()
	for _, f := range [][]string{
		{"status"}, {"metadata", "managedFields"}, {"metadata", "resourceVersion"}, {"metadata", "uid"},
		{"metadata", "generation"}, {"metadata", "creationTimestamp"},
	} {
		unstructured.RemoveNestedField(c.Object, f...)
	}
	anns := c.GetAnnotations()
	delete(anns, "deployment.kubernetes.io/revision")
	if len(anns) == 0 {
		unstructured.RemoveNestedField(c.Object, "metadata", "annotations")
	} else {
		c.SetAnnotations(anns)
	}
	b, _ := yaml.Marshal(c.Object)
	return string(b)
}

// unified renders a line diff (longest common subsequence) with 3 lines of context.
func unified(a, b []string, nameA, nameB string) string {
	if len(a) > 0 && a[len(a)-1] == "" {
		a = a[:len(a)-1]
	}
	if len(b) > 0 && b[len(b)-1] == "" {
		b = b[:len(b)-1]
	}
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		kind byte // ' ', '-', '+'
		line string
		ai   int
		bi   int
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, op{' ', a[i], i, j})
			i, j = i+1, j+1
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', a[i], i, j})
			i++
		default:
			ops = append(ops, op{'+', b[j], i, j})
			j++
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", nameA, nameB)
	const ctx = 3
	for k := 0; k < len(ops); {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		start := max(0, k-ctx)
		end := k
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run-end > 2*ctx || run == len(ops) {
				end = min(len(ops), end+ctx)
				break
			}
			end = run
		}
		ac, bc := 0, 0
		for _, o := range ops[start:end] {
			if o.kind != '+' {
				ac++
			}
			if o.kind != '-' {
				bc++
			}
		}
		fmt.Fprintf(&sb, "@@ -%d,%d +%d,%d @@\n", ops[start].ai+1, ac, ops[start].bi+1, bc)
		for _, o := range ops[start:end] {
			sb.WriteByte(o.kind)
			sb.WriteString(strings.TrimSuffix(o.line, "\n"))
			sb.WriteByte('\n')
		}
		k = end
	}
	return sb.String()
}
