using System.CommandLine;
using CoeffTune.Benchmarks;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune bench retrieval</c>: sentence embeddings put to their first use, retrieval, on Brown-corpus passages.</summary>
public static class RetrievalBenchCommand
{
    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = $"{RetrievalBench.QuickQueries} queries: a smoke run" };
        var outDir = new Option<string>("--out") { Description = "results folder", DefaultValueFactory = _ => "runs/bench/retrieval" };
        var cmd = new Command("retrieval", "Brown corpus: each document's first sentence retrieves its following passage among all documents' passages (recall@1, @10, MRR@10)") { quick, outDir };
        cmd.SetAction(p =>
        {
            string command = "./coefftune " + string.Join(" ", Environment.GetCommandLineArgs().Skip(1));
            var report = RetrievalBench.Run(p.GetValue(quick), p.GetValue(outDir)!, command, Console.Out, fetchLog: Console.Error);
            Console.WriteLine(report.Markdown);
            return 0;
        });
        return cmd;
    }
}
