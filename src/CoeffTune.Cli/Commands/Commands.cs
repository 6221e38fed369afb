using System.CommandLine;

namespace CoeffTune.Cli.Commands;

/// <summary>The coefftune command tree.</summary>
public static class Commands
{
    public static RootCommand Root()
    {
        var root = new RootCommand("coefftune: parameter-efficient fine-tuning of transformers with Coeff-Tuning, LoRA, DoRA, SSF and BitFit");
        foreach (var c in new[]
        {
            DemoCommand.Create(), TrainCommand.Create(), EvalCommand.Create(), PredictCommand.Create(), MergeCommand.Create(), ExportCommand.Create(),
            InspectCommand.Create(), FetchCommand.Create(), TokenizeCommand.Create(), EmbedCommand.Create(), ToyCommand.Create(), BenchCommand.Create(),
        })
            root.Subcommands.Add(c);
        return root;
    }
}
