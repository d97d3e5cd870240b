// compose-check: validates Docker Compose files offline with compose-go, the library
// `docker compose` itself loads files with (Compose Specification JSON schema,
// interpolation from the .env file, and consistency checks such as depends_on targets,
// named volumes and networks). No Docker engine needed.
//
//	compose-check [-env-file FILE] [-print] compose.yaml...
//
// Exits 1 with the loader's message when a file is invalid.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	envFile := flag.String("env-file", "", "environment file for interpolation (default: .env next to the first file)")
	print := flag.Bool("print", false, "print the resolved project as YAML")
	flag.Parse()
	files := flag.Args()
	if len(files) == 0 {
		fmt.Fprintln(os.Stderr, "usage: compose-check [-env-file FILE] [-print] compose.yaml...")
		os.Exit(2)
	}
	dir, err := filepath.Abs(filepath.Dir(files[0]))
	if err != nil {
		fail(err)
	}
	opts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(dir),
		cli.WithName("fermata"),
		cli.WithInterpolation(true),
	}
	if *envFile != "" {
		opts = append(opts, cli.WithEnvFiles(*envFile))
	} else {
		opts = append(opts, cli.WithEnvFiles())
	}
	opts = append(opts, cli.WithDotEnv)
	po, err := cli.NewProjectOptions(files, opts...)
	if err != nil {
		fail(err)
	}
	project, err := po.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	if *print {
		out, err := project.MarshalYAML()
		if err != nil {
			fail(err)
		}
		os.Stdout.Write(out)
	}
	fmt.Fprintf(os.Stderr, "compose-check: %v: valid (%d services)\n", files, len(project.Services))
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "compose-check: %v\n", err)
	os.Exit(1)
}
