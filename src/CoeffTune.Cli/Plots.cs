using CoeffTune.Benchmarks;
using CoeffTune.Training;
using ScottPlot;

namespace CoeffTune.Cli;

/// <summary>The PNG charts the commands write.</summary>
public static class Plots
{
    /// <summary>curves.png: training and validation loss, and validation accuracy, per epoch.</summary>
    public static void Curves(IReadOnlyList<EpochMetrics> history, string path, string title)
    {
        var mp = new Multiplot();
        mp.AddPlots(2);
        mp.Layout = new ScottPlot.MultiplotLayouts.Columns();
        double[] epochs = history.Select(h => (double)h.Epoch).ToArray();
        var loss = mp.GetPlot(0);
        loss.Add.Scatter(epochs, history.Select(h => h.TrainLoss).ToArray()).LegendText = "train loss";
        loss.Add.Scatter(epochs, history.Select(h => h.Validation.Loss).ToArray()).LegendText = "validation loss";
        loss.Title(title + ": loss", 12);
        loss.XLabel("epoch");
        loss.ShowLegend();
        var acc = mp.GetPlot(1);
        acc.Add.Scatter(epochs, history.Select(h => 100 * h.Validation.Accuracy).ToArray()).LegendText = "validation accuracy (%)";
        acc.Title(title + ": accuracy", 12);
        acc.XLabel("epoch");
        acc.ShowLegend();
        mp.SavePng(path, 1000, 380);
    }

    /// <summary>inspect.png: one heatmap of alpha' per layer (row: receiving head, column: source head), each with a colorbar.</summary>
    public static void MixingHeatmaps(IReadOnlyList<(string Title, double[,] Values)> layers, string path)
    {
        int cols = Math.Min(3, layers.Count), rows = (layers.Count + cols - 1) / cols;
        var mp = new Multiplot();
        mp.AddPlots(layers.Count);
        mp.Layout = new ScottPlot.MultiplotLayouts.Grid(rows, cols);
        for (int i = 0; i < layers.Count; i++)
        {
            var plot = mp.GetPlot(i);
            var hm = plot.Add.Heatmap(layers[i].Values);
            hm.Colormap = new ScottPlot.Colormaps.Viridis();
            // The bitmap's first row is drawn at the top; an inverted y axis labels it head 0, as the matrix is written.
            int h = layers[i].Values.GetLength(0);
            plot.Axes.SetLimits(-0.5, h - 0.5, h - 0.5, -0.5);
            plot.Add.ColorBar(hm);
            plot.Title(layers[i].Title, 10);
            plot.XLabel("source head j", 9);
            plot.YLabel("head i", 9);
        }
        mp.SavePng(path, 420 * cols, 360 * rows);
    }

    /// <summary>A comparison's chart: grouped bars, one group per task plus the mean, one bar per method.</summary>
    public static void BenchChart(string path, BenchSetup s, IReadOnlyList<MethodSummary> rows, string title) =>
        GroupedBars(path, s.Tasks, rows.Select(r => (r.Method, (IReadOnlyDictionary<string, double>)r.Tasks, r.Mean)).ToList(), title, "test accuracy (%)");

    /// <summary>Grouped bars: one group per task plus "mean", one bar per row, scores from 0 to 100.</summary>
    public static void GroupedBars(string path, IReadOnlyList<string> tasks, IReadOnlyList<(string Label, IReadOnlyDictionary<string, double> Tasks, double Mean)> rows,
        string title, string yLabel)
    {
        var plot = new Plot();
        var groups = tasks.Append("mean").ToList();
        var palette = new ScottPlot.Palettes.Category10();
        for (int m = 0; m < rows.Count; m++)
        {
            var bars = new List<Bar>();
            for (int g = 0; g < groups.Count; g++)
            {
                double v = groups[g] == "mean" ? rows[m].Mean : rows[m].Tasks[groups[g]];
                bars.Add(new Bar { Position = g * (rows.Count + 1) + m, Value = v, FillColor = palette.GetColor(m) });
            }
            var bp = plot.Add.Bars(bars);
            bp.LegendText = rows[m].Label;
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            groups.Select((g, i) => (double)(i * (rows.Count + 1) + (rows.Count - 1) / 2.0)).ToArray(), groups.ToArray());
        plot.YLabel(yLabel);
        plot.Title(title);
        plot.ShowLegend(Edge.Right);
        double min = rows.Min(r => r.Tasks.Values.Append(r.Mean).Min());
        plot.Axes.SetLimitsY(Math.Max(0, min - 10), 100);
        plot.SavePng(path, 1100, 450);
    }

    /// <summary>cost-seq-lens.png: step time and step memory of each recipe against the sequence length (log-log axes).</summary>
    public static void CostAgainstLength(string path, IReadOnlyList<CostRow> rows, int tokensPerBatch)
    {
        var mp = new Multiplot();
        mp.AddPlots(2);
        mp.Layout = new ScottPlot.MultiplotLayouts.Columns();
        var panels = new (string Title, Func<CostRow, double> Value)[] { ("step time (ms)", r => r.MedianMs), ("step memory (MiB)", r => r.PeakStepMiB) };
        for (int i = 0; i < panels.Length; i++)
        {
            var plot = mp.GetPlot(i);
            foreach (var recipe in rows.Select(r => r.Recipe).Distinct())
            {
                var mine = rows.Where(r => r.Recipe == recipe).OrderBy(r => r.SeqLen).ToList();
                var line = plot.Add.Scatter(mine.Select(r => Math.Log2(r.SeqLen)).ToArray(), mine.Select(r => Math.Log2(Math.Max(panels[i].Value(r), 1e-3))).ToArray());
                line.LegendText = recipe;
                if (recipe.StartsWith("coeff", StringComparison.Ordinal)) line.LinePattern = LinePattern.Dashed;
            }
            var ticks = rows.Select(r => r.SeqLen).Distinct().Order().Select(n => new Tick(Math.Log2(n), n.ToString())).ToArray();
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
            plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { LabelFormatter = y => Math.Pow(2, y).ToString("N0") };
            plot.Title($"{panels[i].Title}, {tokensPerBatch:N0} tokens per batch", 12);
            plot.XLabel("sequence length (tokens)");
            plot.ShowLegend(Alignment.UpperLeft);
        }
        mp.SavePng(path, 1100, 420);
    }
}
