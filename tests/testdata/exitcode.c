/* exitcode.c - prints one line and exits with status 3. Built static,
 * static-pie and dynamic by TestRunWarnsUnwrappable to see what swrap run
 * says before running each, and that it passes the status through. */
#include <stdio.h>

int main(int argc, char **argv)
{
	(void)argc;
	printf("%s ran\n", argv[0]);
	return 3;
}
