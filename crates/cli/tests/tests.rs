// integration tests: filled below
