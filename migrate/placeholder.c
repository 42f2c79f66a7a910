/* placeholder.c - keeps the migrate library non-empty until its sources land. */
int tern_migrate_placeholder(void);
int tern_migrate_placeholder(void) { return 0; }
