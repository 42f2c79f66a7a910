/* ternd_opts.c - the command line of ternd (DESIGN.md §8). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ternd_private.h"

static void ternd_usage(FILE *f)
{
	fprintf(f,
		"usage: ternd [--config FILE] [--data DIR] [--port-base N] [--node-name NAME] [--foreground]\n"
		"             [--init-domain DOMAIN] [--init-admin USER] [--init-admin-password-file FILE]\n"
		"  --config FILE       tern.conf (default: DATA/tern.conf when present, else built-in defaults)\n"
		"  --data DIR          data directory (default ./tern-data)\n"
		"  --port-base N       add N to every listening port\n"
		"  --node-name NAME    this node's name (default: the stored name, else the host name)\n"
		"  --foreground        do not detach; warnings and errors also go to stderr\n"
		"  --init-domain D     first domain of a new data directory (default: the host's domain)\n"
		"  --init-admin USER   administrator of a new data directory (default admin)\n"
		"  --init-admin-password-file FILE\n"
		"                      its first line is the administrator's password (default: generated\n"
		"                      and printed once)\n"
		"  --help, --version\n");
}

int ternd_parse_args(int argc, char **argv, ternd_opts *o)
{
	enum { O_CONFIG = 256, O_DATA, O_PORT_BASE, O_NODE_NAME, O_FOREGROUND, O_INIT_DOMAIN,
	       O_INIT_ADMIN, O_INIT_PW, O_HELP, O_VERSION };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, O_CONFIG },
		{ "data", required_argument, NULL, O_DATA },
		{ "port-base", required_argument, NULL, O_PORT_BASE },
		{ "node-name", required_argument, NULL, O_NODE_NAME },
		{ "foreground", no_argument, NULL, O_FOREGROUND },
		{ "init-domain", required_argument, NULL, O_INIT_DOMAIN },
		{ "init-admin", required_argument, NULL, O_INIT_ADMIN },
		{ "init-admin-password-file", required_argument, NULL, O_INIT_PW },
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	memset(o, 0, sizeof(*o));
	o->data = "./tern-data";
	o->init_admin = "admin";
	int ch;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case O_CONFIG: o->config = optarg; break;
		case O_DATA: o->data = optarg; break;
		case O_PORT_BASE: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || v < 0 || v > 60000) {
				fprintf(stderr, "ternd: --port-base must be a number 0..60000\n");
				return -1;
			}
			o->port_base = (unsigned)v;
			break;
		}
		case O_NODE_NAME: o->node_name = optarg; break;
		case O_FOREGROUND: o->foreground = 1; break;
		case O_INIT_DOMAIN: o->init_domain = optarg; break;
		case O_INIT_ADMIN: o->init_admin = optarg; break;
		case O_INIT_PW: o->init_password_file = optarg; break;
		case O_HELP: ternd_usage(stdout); return 1;
		case O_VERSION: printf("ternd %s\n", TERN_VERSION); return 1;
		default:
			fprintf(stderr, "ternd: unknown or incomplete option %s\n", argv[optind - 1]);
			ternd_usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ternd: unexpected argument %s\n", argv[optind]);
		return -1;
	}
	if (o->node_name != NULL && (o->node_name[0] == '\0' || strlen(o->node_name) > 63 ||
				     strpbrk(o->node_name, " /\t\n") != NULL)) {
		fprintf(stderr, "ternd: invalid --node-name\n");
		return -1;
	}
	return 0;
}
