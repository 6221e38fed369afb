using System.CommandLine;
using CoeffTune.Cli.Commands;

var root = new RootCommand("coefftune: parameter-efficient fine-tuning of transformers with Coeff-Tuning, LoRA, DoRA, SSF and BitFit");
root.Subcommands.Add(ToyCommand.Create());
root.Subcommands.Add(FetchCommand.Create());
root.Subcommands.Add(EmbedCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(DemoCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(EvalCommand.Create());
root.Subcommands.Add(PredictCommand.Create());
root.Subcommands.Add(MergeCommand.Create());
root.Subcommands.Add(InspectCommand.Create());
return CoeffTune.Cli.Cli.Run(root, args);
