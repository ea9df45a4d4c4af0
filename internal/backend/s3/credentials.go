package s3

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/s3backer-go/s3backer/internal/config"
)

// DefaultAccessFile is the access file s3backer reads when --accessFile is
// not given, relative to $HOME.
const DefaultAccessFile = ".s3backer_passwd"

// ResolveCredentials applies s3backer's credential rules (s3b_config.c) to
// cfg; lookupEnv is os.LookupEnv outside tests. In order:
//
//   - --accessEC2IAM[=ROLE]: role credentials from instance metadata.
//   - --accessId="": anonymous.
//   - The access ID is --accessId, else the first entry of the access file
//     (--accessFile, default $HOME/.s3backer_passwd).
//   - The key is --accessKey, else the variable --accessKeyEnv names, else
//     the access file's entry for that ID; no key is an error.
//   - With no ID from a flag or a file and no key flag, the AWS SDK's
//     default chain (s3backer would go anonymous; the chain also finds
//     environment variables, profiles, SSO and IMDS).
func ResolveCredentials(cfg *config.Config, lookupEnv func(string) (string, bool)) (Credentials, error) {
	keyGiven := cfg.IsSet("accessKey") || cfg.AccessKeyEnv != ""
	if cfg.AccessEC2IAM {
		if cfg.AccessID != "" || keyGiven {
			return Credentials{}, errors.New("--accessEC2IAM cannot be combined with --accessId, --accessKey or --accessKeyEnv")
		}
		endpoint, _ := lookupEnv("AWS_EC2_METADATA_SERVICE_ENDPOINT")
		return Credentials{Mode: CredentialsEC2IAM, Role: cfg.AccessEC2IAMRole, IMDSv2: cfg.AccessEC2IAMIMDSv2, IMDSEndpoint: endpoint}, nil
	}

	if cfg.IsSet("accessId") && cfg.AccessID == "" {
		if keyGiven {
			return Credentials{}, errors.New("--accessKey/--accessKeyEnv given but --accessId is empty")
		}
		return Credentials{Mode: CredentialsAnonymous}, nil
	}

	file, explicitFile := cfg.AccessFile, cfg.IsSet("accessFile") && cfg.AccessFile != ""
	if !explicitFile {
		home, ok := lookupEnv("HOME")
		if ok && home != "" {
			file = filepath.Join(home, DefaultAccessFile)
		}
	}
	var entries []accessEntry
	if file != "" {
		var err error
		entries, err = readAccessFile(file)
		switch {
		case errors.Is(err, fs.ErrNotExist) && !explicitFile:
			// No default file: fine, as for s3backer.
		case err != nil:
			return Credentials{}, fmt.Errorf("--accessFile: %w", err)
		}
	}

	var key string
	switch {
	case cfg.AccessKeyEnv != "":
		v, ok := lookupEnv(cfg.AccessKeyEnv)
		if !ok {
			return Credentials{}, fmt.Errorf("--accessKeyEnv=%s: environment variable %s is not set", cfg.AccessKeyEnv, cfg.AccessKeyEnv)
		}
		key = v
	case cfg.IsSet("accessKey"):
		key = cfg.AccessKey
	}

	id := cfg.AccessID
	if id == "" && len(entries) > 0 {
		id = entries[0].id
	}
	if id == "" {
		if keyGiven {
			return Credentials{}, errors.New("--accessKey/--accessKeyEnv given without --accessId (and no access file entry to take it from)")
		}
		return Credentials{Mode: CredentialsDefaultChain}, nil
	}
	if !keyGiven {
		found := false
		for _, e := range entries {
			if e.id == id {
				key, found = e.key, true
				break
			}
		}
		if !found {
			where := "no access file"
			if file != "" {
				where = "no line \"" + id + ":KEY\" in " + file
			}
			return Credentials{}, fmt.Errorf("no secret key for access ID %q: give --accessKey or --accessKeyEnv (%s)", id, where)
		}
	}
	if key == "" {
		return Credentials{}, fmt.Errorf("empty secret key for access ID %q", id)
	}
	return Credentials{Mode: CredentialsStatic, AccessID: id, AccessKey: key}, nil
}

type accessEntry struct{ id, key string }

// readAccessFile reads "id:key" lines. Like s3backer, lines that are empty,
// start with '#' or white space, or have no colon are skipped; trailing
// white space is dropped; the key is everything after the first colon.
func readAccessFile(name string) ([]accessEntry, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseAccessFile(f)
}

func parseAccessFile(r io.Reader) ([]accessEntry, error) {
	var out []accessEntry
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || line[0] == ' ' || line[0] == '\t' || line[0] == '\r' {
			continue
		}
		line = strings.TrimRight(line, " \t\r\v\f")
		id, key, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		out = append(out, accessEntry{id, key})
	}
	return out, sc.Err()
}

// provider turns resolved credentials into what the SDK signs with. It
// makes no request: IMDS and the default chain are asked on first use.
func (c Credentials) provider(ctx context.Context, region string) (aws.CredentialsProvider, error) {
	switch c.Mode {
	case CredentialsAnonymous:
		// Not wrapped: the SDK recognises this type and sends no signature.
		return aws.AnonymousCredentials{}, nil
	case CredentialsStatic:
		return credentials.NewStaticCredentialsProvider(c.AccessID, c.AccessKey, ""), nil
	case CredentialsEC2IAM:
		opt := imds.Options{
			Endpoint: c.IMDSEndpoint,
			// The flag asks for IMDS explicitly: it wins over
			// AWS_EC2_METADATA_DISABLED.
			ClientEnableState: imds.ClientEnabled,
			// As for S3 requests, retrying is the retry decorator's job.
			Retryer: aws.NopRetryer{},
		}
		if c.IMDSv2 {
			opt.EnableFallback = aws.FalseTernary
		}
		var client ec2rolecreds.GetMetadataAPIClient = imds.New(opt)
		if c.Role != "" {
			client = fixedRole{client, c.Role}
		}
		p := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = client })
		return credsError{aws.NewCredentialsCache(p), "EC2 IAM role (--accessEC2IAM)"}, nil
	case CredentialsDefaultChain:
		// Region given so that loading never asks IMDS for it; missing
		// ~/.aws files are not an error.
		cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
		if err != nil {
			return nil, &credentialsErr{"AWS default credential chain", err}
		}
		if cfg.Credentials == nil {
			return aws.AnonymousCredentials{}, nil
		}
		return credsError{cfg.Credentials, "AWS default credential chain (no --accessId, --accessFile or " +
			DefaultAccessFile + ")"}, nil
	}
	return nil, fmt.Errorf("unknown credentials mode %d", c.Mode)
}

// fixedRole makes ec2rolecreds fetch the named role: s3backer takes the
// role from --accessEC2IAM=ROLE instead of listing the instance's roles.
type fixedRole struct {
	ec2rolecreds.GetMetadataAPIClient
	role string
}

func (f fixedRole) GetMetadata(ctx context.Context, in *imds.GetMetadataInput, opts ...func(*imds.Options)) (*imds.GetMetadataOutput, error) {
	if strings.Trim(in.Path, "/") == "iam/security-credentials" {
		return &imds.GetMetadataOutput{Content: io.NopCloser(strings.NewReader(f.role + "\n"))}, nil
	}
	return f.GetMetadataAPIClient.GetMetadata(ctx, in, opts...)
}

// credsError marks failures to obtain credentials, so that they are
// reported as such rather than as an S3 error.
type credsError struct {
	aws.CredentialsProvider
	source string
}

func (c credsError) Retrieve(ctx context.Context) (aws.Credentials, error) {
	cr, err := c.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return cr, &credentialsErr{c.source, err}
	}
	return cr, nil
}

type credentialsErr struct {
	source string
	err    error
}

func (e *credentialsErr) Error() string {
	return "cannot get S3 credentials from " + e.source + ": " + e.err.Error()
}
func (e *credentialsErr) Unwrap() error { return e.err }
