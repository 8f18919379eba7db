"""Services: hosts, a declarative catalogue, instances deployed on Docker, behind Caddy."""
