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
            DemoCommand.Create(), TrainCommand.Create(), EvalCommand.Create(), PredictCommand.Create(), GenerateCommand.Create(), MergeCommand.Create(), ExportCommand.Create(),
            InspectCommand.Create(), FetchCommand.Create(), TokenizeCommand.Create(), EmbedCommand.Create(), SearchCommand.Create(), ToyCommand.Create(), BenchCommand.Create(), GenerateImagesCommand.Create(),
        })
            root.Subcommands.Add(c);
        // Handled before parsing (Cli.Run); declared so that every command's help lists it.
        root.Options.Add(new Option<bool>(Cli.VerboseFlag) { Description = "on failure, print the full trace (for bug reports)", Recursive = true });
        return root;
    }
}
