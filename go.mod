module github.com/s3backer-go/s3backer

go 1.26.8

require (
	golang.org/x/sync v0.25.0
	golang.org/x/sys v0.50.0
)
