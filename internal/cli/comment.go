package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mlship/mlship/internal/comment"
	"github.com/mlship/mlship/internal/fsutil"
	"github.com/mlship/mlship/internal/platform"
	"github.com/mlship/mlship/internal/report"
)

// sidecar travels with a report saved for later posting (fork pull requests).
type sidecar struct {
	ID     string `json:"id"`
	Repo   string `json:"repo,omitempty"`
	Number int    `json:"number,omitempty"`
}

func newCommentCmd(stdout, stderr io.Writer) *cobra.Command {
	f := &reportFlags{}
	var id, fromFile, artifact, metricsFile, repo string
	var pr int
	cmd := &cobra.Command{
		Use:   "comment",
		Short: "Publish the report: sticky PR comment (GitHub), MR note (GitLab), step summary, or the terminal",
		Long: `comment renders the report (or takes one with --from-file) and publishes it where the job runs:
- GitHub Actions: one sticky comment per --id on the pull request (found by a hidden marker,
  created then updated), and always the job's step summary. A token that may not comment (pull
  requests from forks) does not fail the job: the report goes to the step summary and to --artifact
  (with a .json beside it naming the pull request), for a workflow_run workflow to post with
  mlship comment --from-file.
- GitLab CI: one sticky note per --id on the merge request (token: MLSHIP_GITLAB_TOKEN or
  GITLAB_TOKEN; CI_JOB_TOKEN cannot post notes), and --metrics-file for artifacts:reports:metrics.
- A terminal: the report on stdout.`,
		Example: `  mlship comment --config . --image-json image.json --id heart
  mlship comment --from-file mlship-report.md   # in a workflow_run workflow`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			getenv := os.Getenv
			var md string
			var side sidecar
			if fromFile != "" {
				b, err := os.ReadFile(fromFile)
				if err != nil {
					return fmt.Errorf("reading report %q: %w", fromFile, unwrapPath(err))
				}
				md = string(b)
				if sb, err := os.ReadFile(fromFile + ".json"); err == nil {
					if err := json.Unmarshal(sb, &side); err != nil {
						return fmt.Errorf("reading %q: %w", fromFile+".json", err)
					}
				}
			} else {
				in, err := f.input(cmd, getenv)
				if err != nil {
					return err
				}
				md = report.Markdown(in)
				if id == "" {
					id = in.Card.Name
				}
				if metricsFile != "" {
					if err := fsutil.WriteFileAtomic(metricsFile, []byte(openMetrics(in)), 0o644); err != nil {
						return fmt.Errorf("writing metrics %q: %w", metricsFile, err)
					}
				}
			}
			if id == "" {
				id = side.ID
			}
			if id == "" {
				id = "mlship"
			}
			if err := comment.ValidID(id); err != nil {
				return usageError{err}
			}
			if repo == "" {
				repo = side.Repo
			}
			if pr == 0 {
				pr = side.Number
			}
			p := platform.Detect(getenv, stdout)
			if ok, err := p.StepSummary(md); err != nil {
				return err
			} else if ok {
				fmt.Fprintln(stderr, "report written to the step summary")
			}
			opts := comment.Options{UserAgent: "mlship"}
			var poster comment.Poster
			var err error
			switch {
			case p.Kind == platform.GitHub && pr > 0:
				gh := &comment.GitHub{APIURL: getenv("GITHUB_API_URL"), Token: getenv("GITHUB_TOKEN"), Repo: repo, Number: pr, Opts: opts}
				if gh.Repo == "" {
					gh.Repo = getenv("GITHUB_REPOSITORY")
				}
				poster = gh
			case p.Kind == platform.GitHub:
				poster, err = comment.GitHubFromEnv(getenv, opts)
			case p.Kind == platform.GitLab:
				poster, err = comment.GitLabFromEnv(getenv, opts)
			default:
				_, err := io.WriteString(stdout, md)
				return err
			}
			if errors.Is(err, comment.ErrNotPullRequest) {
				fmt.Fprintf(stderr, "no pull or merge request to comment on (%v); the report is in the step summary or job log\n", err)
				if p.Kind != platform.GitHub {
					fmt.Fprint(stdout, md)
				}
				return nil
			}
			if err != nil {
				return usageError{err}
			}
			res, err := poster.Upsert(cmd.Context(), id, md)
			var forbidden *comment.ForbiddenError
			if errors.As(err, &forbidden) {
				// A fork's token may not write: keep the job green, save the report.
				if artifact == "" {
					artifact = "mlship-report.md"
				}
				sc := sidecar{ID: id, Repo: repo, Number: pr}
				if gh, ok := poster.(*comment.GitHub); ok {
					sc.Repo, sc.Number = gh.Repo, gh.Number
				}
				sb, _ := json.MarshalIndent(sc, "", "  ")
				if werr := fsutil.WriteFileAtomic(artifact, []byte(md), 0o644); werr != nil {
					return werr
				}
				if werr := fsutil.WriteFileAtomic(artifact+".json", append(sb, '\n'), 0o644); werr != nil {
					return werr
				}
				p.Warning(fmt.Sprintf("could not comment on %s (%s): the report is in the step summary and in %s; "+
					"upload it as an artifact and post it from a workflow_run workflow with `mlship comment --from-file %s`",
					poster.Where(), forbidden.Message, artifact, filepath.Base(artifact)))
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s comment %d on %s: %s\n", res.Action, res.ID, poster.Where(), res.URL)
			return p.SetOutputs(map[string]string{"comment-url": res.URL}, "")
		},
	}
	fs := cmd.Flags()
	addReportFlags(fs, f)
	fs.StringVar(&id, "id", "", "report id: one sticky comment per id (default: the model's name)")
	fs.StringVar(&fromFile, "from-file", "", "post this rendered report (and the pull request named in FILE.json) instead of rendering one")
	fs.StringVar(&artifact, "artifact", "mlship-report.md", "where to save the report when the token may not comment (fork pull requests)")
	fs.StringVar(&metricsFile, "metrics-file", "", "also write the metrics in OpenMetrics text format here (GitLab artifacts:reports:metrics)")
	fs.StringVar(&repo, "repo", "", "GitHub repository OWNER/NAME (default: from the event or $GITHUB_REPOSITORY)")
	fs.IntVar(&pr, "pr", 0, "pull request number (default: from the event)")
	return cmd
}

// openMetrics renders the metrics (and the baseline's) for GitLab's metrics report.
func openMetrics(in report.Input) string {
	cur := map[string]float64(in.Card.Metrics)
	var base map[string]float64
	if in.Gate != nil {
		if in.Gate.Metrics != nil {
			cur = in.Gate.Metrics
		}
		base = in.Gate.Baseline
	}
	keys := make([]string, 0, len(cur))
	for k := range cur {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		n := "mlship_" + strings.NewReplacer("-", "_", ".", "_").Replace(k)
		fmt.Fprintf(&b, "# TYPE %s gauge\n%s %s\n", n, n, strconv.FormatFloat(cur[k], 'g', -1, 64))
		if v, ok := base[k]; ok {
			fmt.Fprintf(&b, "# TYPE %s_baseline gauge\n%s_baseline %s\n", n, n, strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	b.WriteString("# EOF\n")
	return b.String()
}
