return CoeffTune.Cli.Cli.Run(CoeffTune.Cli.Commands.Commands.Root(), args);
