"""Front ends that turn other model formats into programs, and programs back into specs."""
