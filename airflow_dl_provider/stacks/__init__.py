"""CloudFormation stacks that put the provider on Amazon MWAA, and the commands that ship them."""
