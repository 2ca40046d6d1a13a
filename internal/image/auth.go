package image

import (
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// ciKeychain holds credentials that CI systems give jobs in the environment.
type ciKeychain map[string]authn.AuthConfig

// Resolve returns the credentials for the registry, or Anonymous.
func (k ciKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if c, ok := k[r.RegistryStr()]; ok {
		return authn.FromConfig(c), nil
	}
	return authn.Anonymous, nil
}

// DefaultKeychain finds registry credentials in the docker config ($DOCKER_CONFIG
// or ~/.docker/config.json, what `docker login` and `crane auth login` write),
// then in CI variables: GitHub's GITHUB_TOKEN for ghcr.io (user $GITHUB_ACTOR) and
// GitLab's CI_REGISTRY, CI_REGISTRY_USER and CI_REGISTRY_PASSWORD. getenv is
// os.Getenv in production.
func DefaultKeychain(getenv func(string) string) authn.Keychain {
	ci := ciKeychain{}
	if tok := getenv("GITHUB_TOKEN"); tok != "" {
		user := getenv("GITHUB_ACTOR")
		if user == "" {
			user = "mlship"
		}
		ci["ghcr.io"] = authn.AuthConfig{Username: user, Password: tok}
	}
	if reg, user, pw := getenv("CI_REGISTRY"), getenv("CI_REGISTRY_USER"), getenv("CI_REGISTRY_PASSWORD"); reg != "" && user != "" && pw != "" {
		host := strings.TrimPrefix(strings.TrimPrefix(reg, "https://"), "http://")
		host = strings.TrimSuffix(host, "/")
		ci[host] = authn.AuthConfig{Username: user, Password: pw}
	}
	return authn.NewMultiKeychain(authn.DefaultKeychain, ci)
}

// WithCredentials puts a user name and password for the registry of ref in
// front of next (the docker config and CI tokens): what a job passes as the
// registry-username and registry-password inputs.
func WithCredentials(ref, user, password string, next authn.Keychain) (authn.Keychain, error) {
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return nil, err
	}
	explicit := ciKeychain{r.Context().RegistryStr(): authn.AuthConfig{Username: user, Password: password}}
	return authn.NewMultiKeychain(explicit, next), nil
}
