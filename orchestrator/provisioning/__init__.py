"""Where runtimes run: their virtual environments, Docker images and the local base image."""
