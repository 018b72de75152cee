#include <math.h>
#include <stdlib.h>

#include "distance.h"
#include "grid.h"
#include "kmeans.h"

void kmz_distances(const double *centres, int dims, int64_t k, double *apart) {
    for (int64_t i = 0; i < k; i++) {
        apart[i * k + i] = 0.0;
        for (int64_t j = i + 1; j < k; j++)
            apart[i * k + j] = sqrt(centres_distance2(centres, i, centres, j, dims));
    }
    /* The lower triangle mirrors the upper ((a - b)^2 and (b - a)^2 are the same float),
     * copied block by block: column by column, each write would miss the cache. */
    enum { B = 32 };
    for (int64_t ib = 0; ib < k; ib += B)
        for (int64_t jb = 0; jb <= ib; jb += B)
            for (int64_t i = ib; i < ib + B && i < k; i++)
                for (int64_t j = jb; j < jb + B && j < i; j++)
                    apart[i * k + j] = apart[j * k + i];
}

void kmz_rank(const double *apart, int64_t k, int32_t *order, double *ranked) {
    for (int64_t i = 0; i < k; i++) {
        int32_t *row = order + i * k;
        double *out = ranked + i * k;
        for (int64_t t = 0; t < k; t++)
            out[t] = apart[i * k + row[t]];
        for (int64_t t = 1; t < k; t++) { /* insertion sort: each centre is a few places off at most */
            int32_t c = row[t];
            double d = out[t];
            int64_t u = t;
            for (; u > 0 && (out[u - 1] > d || (out[u - 1] == d && row[u - 1] > c)); u--) {
                row[u] = row[u - 1];
                out[u] = out[u - 1];
            }
            row[u] = c;
            out[u] = d;
        }
    }
}

static double largest(const double *values, int64_t n) {
    double top = values[0];
    for (int64_t i = 1; i < n; i++)
        if (values[i] > top)
            top = values[i];
    return top;
}

/* The index a uniform draw u in [0, 1) lands on, by bisection of a cumulative sum of
 * n entries: the first entry above u x total, so never a zero-weight one. */
static int64_t draw(const double *cumulative, int64_t n, double u) {
    double target = u * cumulative[n - 1];
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (cumulative[mid] <= target)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A candidate at distance `apart` from a cluster's centre can only take the points of
 * shell s and beyond (triangle inequality), by a hair wide of the shell's edge: the
 * candidate is out of reach of shell s when apart >= edge(s). Each cluster's edges are
 * worked out once, when it takes its points (its scale never changes after). */
static inline double shell_edge(int64_t s, double scale) {
    return 2 * (s + 1.000001) / scale;
}

/* The distance apart, sqrtf(apart2), if under `outer` (the edge of a cluster's outer
 * shell), else -1. Most clusters a candidate looks at are out of its reach by far more
 * than rounding, and those need no square root. */
static inline float apart_within(float apart2, double outer) {
    if (apart2 >= outer * outer * (1 + 1e-6))
        return -1;
    float apart = sqrtf(apart2);
    return apart < outer ? apart : -1;
}

/* Seeding keeps each cluster's points in KMZ_SHELLS shells by reach (distance from
 * the cluster's centre), each with its cost: a candidate visits only the outer shells
 * it could take points from, and counts the inner ones whole. Each cluster is listed
 * in the cells of a grid that its outer shell's edge meets, so a candidate looks only
 * at the clusters listed in its own cell (those near enough to lose points to it, and
 * a few more) and at those made since the lists were: clusters only shrink, so lists
 * made once stay true, and they are made anew now and then.
 *
 * A shell is a run of point numbers in one pool, read forwards or backwards: walking a
 * run, the loads of one point's data do not wait for the last's, as they would along a
 * linked list. A cluster's shells are cut from the end of the pool when it takes its
 * points and shrink in place as points leave; when the pool is full it is packed. */
typedef struct {
    int64_t start, length; /* pool[start .. start + length) */
    int backwards;         /* the shell's order is the run's from its end */
} kmz_shell;

/* The shell's points in its order: `for (t = 0; t < length; t++) pool[first + t * step]`. */
static inline void shell_walk(const kmz_shell *shell, int64_t *first, int64_t *step) {
    *first = shell->backwards ? shell->start + shell->length - 1 : shell->start;
    *step = shell->backwards ? -1 : 1;
}

/* `kept` plus, point by point in the shell's order, what each of its points would
 * cost were `to` a centre, at most what it costs now; the distances go to visits[].
 * Inlined with dims a constant: the one loop that seeding spends most of its time in. */
static inline double shell_kept(const kmz_shell *shell, const int64_t *pool, const float *points, int dims,
                                const double *weights, const double *cost, const float *to, double kept,
                                float *visits) {
    int64_t first, step;
    shell_walk(shell, &first, &step);
    for (int64_t t = 0; t < shell->length; t++) {
        int64_t i = pool[first + t * step];
        float d = visits[t] = point_distance2(points, i, to, 0, dims);
        double taken = weights[i] * d;
        kept += taken < cost[i] ? taken : cost[i];
    }
    return kept;
}

int kmz_seed(const float *points, int dims, const double *weights, int64_t n, int64_t k,
             const double *draws, int64_t trials, int64_t *chosen, int64_t *labels, kmz_poll *poll) {
    enum { S = KMZ_SHELLS };
    int status = KMZ_NO_MEMORY;
    int64_t capacity = 2 * n, used = 0; /* twice the points: packing is rare */
    int64_t *pool = malloc(sizeof(int64_t) * capacity);
    kmz_shell *shells = calloc(k * S, sizeof(kmz_shell));
    int64_t *top = calloc(k, sizeof(int64_t)), *joining = malloc(sizeof(int64_t) * n);
    double *shell_cost = calloc(k * S, sizeof(double)), *cluster_cost = calloc(k, sizeof(double));
    double *edge = malloc(sizeof(double) * k * S);
    double *scale = malloc(sizeof(double) * k), *cumulative = malloc(sizeof(double) * (n > k ? n : k));
    double *cost = malloc(sizeof(double) * n), *reach = malloc(sizeof(double) * n);
    int64_t *near = malloc(sizeof(int64_t) * k), *shell_of = malloc(sizeof(int64_t) * n);
    /* The distances from this trial's candidate to the points it visits, in order, and
     * those of the best trial's so far: the winner's are its new points' costs. */
    float *visits = malloc(sizeof(float) * n), *best_visits = malloc(sizeof(float) * n);
    double *centre = malloc(sizeof(double) * 3 * k), *radius = malloc(sizeof(double) * k);
    double lo[3], hi[3];
    kmz_bounds_f32(points, dims, n, lo, hi);
    kmz_grid grid;
    kmz_grid_shape(&grid, lo, hi, 2 * k); /* fine cells: few clusters listed in each */
    kmz_balls balls = {0};
    int64_t listed = 0; /* clusters 0..listed-1 are in the lists */
    if (!pool || !shells || !top || !joining || !shell_cost || !cluster_cost || !scale || !cumulative
        || !cost || !reach || !near || !shell_of || !centre || !radius || !edge || !visits || !best_visits)
        goto done;
    for (int64_t i = 0; i < n; i++)
        labels[i] = 0;

    double running = 0.0;
    for (int64_t i = 0; i < n; i++)
        cumulative[i] = running += weights[i];
    chosen[0] = draw(cumulative, n, draws[0]);
    for (int64_t i = 0; i < n; i++) {
        float d = point_distance2(points, i, points, chosen[0], dims);
        cost[i] = weights[i] * d;
        reach[i] = sqrtf(d);
        joining[i] = i;
    }
    int64_t m = n, j = 0;
    for (;;) {
        /* Cluster j takes its m points: shells of equal width out to the farthest, each
         * in the order the points joined. */
        double farthest = 0.0;
        for (int64_t t = 0; t < m; t++)
            if (reach[joining[t]] > farthest)
                farthest = reach[joining[t]];
        scale[j] = farthest > 0 ? S / farthest : 1.0;
        for (int s = 0; s < S; s++)
            edge[j * S + s] = shell_edge(s, scale[j]);
        if (used + m > capacity) { /* pack: the shells lie in order of cluster and shell, so moving them
                                     * down in that order overwrites none not yet moved */
            used = 0;
            for (int64_t c = 0; c < j * S; c++) {
                for (int64_t t = 0; t < shells[c].length; t++)
                    pool[used + t] = pool[shells[c].start + t];
                shells[c].start = used;
                used += shells[c].length;
            }
        }
        kmz_shell *own = shells + j * S;
        for (int64_t t = 0; t < m; t++) {
            int64_t i = joining[t], s = (int64_t)(reach[i] * scale[j]);
            shell_of[t] = s > S - 1 ? S - 1 : s;
            own[shell_of[t]].length++;
        }
        for (int s = 0; s < S; s++) {
            own[s].start = used;
            used += own[s].length;
        }
        for (int64_t t = m - 1; t >= 0; t--) { /* each shell filled from its end */
            int64_t i = joining[t], s = shell_of[t];
            pool[own[s].start + --own[s].length] = i;
            shell_cost[j * S + s] += cost[i];
            if (s > top[j])
                top[j] = s;
        }
        for (int s = 0; s < S; s++) /* the lengths counted down to 0 on the way: restore them */
            own[s].length = (s + 1 < S ? own[s + 1].start : used) - own[s].start;
        cluster_cost[j] = 0.0;
        for (int s = 0; s < S; s++)
            cluster_cost[j] += shell_cost[j * S + s];
        j++;
        if (j == k)
            break;
        for (int a = 0; a < 3; a++)
            centre[3 * (j - 1) + a] = points[dims * chosen[j - 1] + a]; /* the grid's 3 axes */
        /* List them all afresh when those made since cost a candidate more to look at
         * than the lists cost to make (about sqrt(j) steps apart). */
        if ((j - listed) * (j - listed) >= 8 * j || 2 * listed < j) {
            for (int64_t c = 0; c < j; c++) /* a hair wide: sqrtf may round a distance just under */
                radius[c] = edge[c * S + top[c]] * (1 + 1e-5) + 1e-6;
            if (kmz_balls_build(&balls, &grid, centre, radius, j) < 0)
                goto done;
            listed = j;
        }
        running = 0.0;
        for (int64_t c = 0; c < j; c++)
            cumulative[c] = running += cluster_cost[c];
        int64_t best = -1;
        double best_gain = -INFINITY;
        for (int64_t t = 0; t < trials; t++) {
            /* The draw: a cluster by cost, a shell in it by cost, a point in that by cost. */
            double u = draws[j * trials + t];
            int64_t c = draw(cumulative, j, u);
            double target = u * cumulative[j - 1] - (c > 0 ? cumulative[c - 1] : 0.0);
            int64_t s = 0;
            while (s < S - 1 && (shell_cost[c * S + s] <= target || shells[c * S + s].length == 0)) {
                target -= shell_cost[c * S + s];
                s++;
            }
            while (shells[c * S + s].length == 0)
                s--;
            int64_t first, step, candidate;
            shell_walk(shells + c * S + s, &first, &step);
            candidate = pool[first];
            double total = 0.0;
            for (int64_t t2 = 0; t2 < shells[c * S + s].length; t2++) {
                int64_t i = pool[first + t2 * step];
                if (cost[i] > 0) /* never an existing centre */
                    candidate = i;
                total += cost[i];
                if (total > target)
                    break;
            }
            /* How much the total cost would fall were the candidate a centre. */
            double at[3] = {points[dims * candidate], points[dims * candidate + 1], points[dims * candidate + 2]};
            int64_t nearby = kmz_balls_at(&balls, &grid, at, near);
            for (int64_t c = listed; c < j; c++)
                near[nearby++] = c;
            double gain = 0.0;
            int64_t visited = 0;
            const float *to = points + dims * candidate;
            for (int64_t t2 = 0; t2 < nearby; t2++) {
                int64_t other = near[t2];
                const double *edges = edge + other * S;
                float apart = apart_within(point_distance2(to, 0, points, chosen[other], dims), edges[top[other]]);
                if (apart < 0)
                    continue; /* out of reach of every shell: no gain */
                double inner = cluster_cost[other], kept = 0.0;
                for (int64_t s2 = top[other]; s2 >= 0; s2--) {
                    if (apart >= edges[s2])
                        break; /* this shell and those inside it are too near their centre */
                    inner -= shell_cost[other * S + s2];
                    const kmz_shell *shell = shells + other * S + s2;
                    kept = dims == 4 ? shell_kept(shell, pool, points, 4, weights, cost, to, kept, visits + visited)
                                     : shell_kept(shell, pool, points, 3, weights, cost, to, kept, visits + visited);
                    visited += shell->length;
                }
                gain += cluster_cost[other] - (kept + (inner > 0.0 ? inner : 0.0));
            }
            if (gain > best_gain) {
                best = candidate;
                best_gain = gain;
                float *swap = best_visits;
                best_visits = visits;
                visits = swap;
            }
            if (kmz_poll_tick(poll, nearby + 1)) {
                status = KMZ_INTERRUPTED;
                goto done;
            }
        }
        chosen[j] = best;
        /* The points nearer the new centre than their own leave their shells for it,
         * cluster by cluster in order of number: the points its trial visited, in the
         * same order. Those that stay close up in place, in the reverse of their order. */
        m = 0;
        int64_t visited = 0;
        double at[3] = {points[dims * best], points[dims * best + 1], points[dims * best + 2]};
        int64_t nearby = kmz_balls_at(&balls, &grid, at, near);
        for (int64_t c = listed; c < j; c++)
            near[nearby++] = c;
        for (int64_t t = 0; t < nearby; t++) {
            int64_t c = near[t];
            float apart = apart_within(point_distance2(points, best, points, chosen[c], dims), edge[c * S + top[c]]);
            if (apart < 0)
                continue; /* out of reach: the cluster stays as it is */
            for (int64_t s = top[c]; s >= 0; s--) {
                if (apart >= edge[c * S + s])
                    break;
                kmz_shell *shell = shells + c * S + s;
                int64_t first, step, to;
                shell_walk(shell, &first, &step);
                to = first;
                shell_cost[c * S + s] = 0.0;
                for (int64_t t2 = 0; t2 < shell->length; t2++) {
                    int64_t i = pool[first + t2 * step];
                    float d = best_visits[visited++];
                    if (weights[i] * d < cost[i]) {
                        cost[i] = weights[i] * d;
                        reach[i] = sqrtf(d);
                        labels[i] = j;
                        joining[m++] = i;
                    } else {
                        pool[to] = i;
                        to += step;
                        shell_cost[c * S + s] += cost[i];
                    }
                }
                shell->length = step > 0 ? to - first : first - to;
                if (step < 0)
                    shell->start = to + 1;
                shell->backwards = !shell->backwards;
            }
            while (top[c] > 0 && shells[c * S + top[c]].length == 0)
                top[c]--;
            cluster_cost[c] = 0.0;
            for (int s = 0; s < S; s++)
                cluster_cost[c] += shell_cost[c * S + s];
        }
    }
    status = KMZ_OK;
done:
    free(pool), free(shells), free(top), free(joining), free(shell_cost), free(cluster_cost), free(shell_of);
    free(scale), free(cumulative), free(cost), free(reach), free(near), free(centre), free(radius), free(edge);
    free(visits), free(best_visits);
    kmz_balls_free(&balls);
    return status;
}

/* (label, squared distance to the nearest, to the second nearest) of point i. With a
 * table the centres are visited by distance from `guess` (as it was when the table
 * was made; each centre has drifted at most `most` since): once a centre is so far
 * from it that the triangle inequality puts it beyond the second nearest so far, so
 * are all the rest. Without one (large K), the grid of the centres finds what a scan
 * of every centre would: `guess` if it is among the nearest, else the lowest number. */
static int64_t two_nearest(const float *points, int dims, int64_t i, const double *centres, int64_t k,
                           int64_t guess, const kmz_table *table, const kmz_grid *grid, double most,
                           double *first_out, double *second_out) {
    int64_t m = table->m;
    if (m == 0) {
        double at[KMZ_MAX_DIMS];
        for (int a = 0; a < dims; a++)
            at[a] = points[dims * i + a];
        return kmz_grid_two_nearest(grid, centres, at, guess, first_out, second_out);
    }
    int64_t best = guess;
    double first = centre_distance2(points, i, centres, guess, dims), second = INFINITY;
    const double *ranked = table->ranked + guess * m;
    const int32_t *order = table->order + guess * m;
    double r = sqrt(first);
    for (int64_t t = 0; t < k; t++) {
        int64_t c = order[t];
        if (c == guess)
            continue;
        double reach = ranked[t] - table->drift[guess] - most - r;
        if (reach > 0 && reach * reach >= second)
            break;
        double d = centre_distance2(points, i, centres, c, dims);
        if (d < first) {
            best = c;
            second = first;
            first = d;
        } else if (d < second) {
            second = d;
        }
    }
    *first_out = first;
    *second_out = second;
    return best;
}

/* Half the distance from each centre to its nearest other (each has drifted at most
 * `most` since the table was made), searched in table order until the table proves
 * the rest farther: a point no farther than that from its centre is no nearer to any
 * other. */
static void table_halves(const double *centres, int dims, int64_t k, const kmz_table *table, double most,
                         double *half) {
    for (int64_t c = 0; c < k; c++) {
        const double *ranked = table->ranked + c * table->m;
        const int32_t *order = table->order + c * table->m;
        double nearest = INFINITY;
        for (int64_t t = 0; t < k; t++) {
            int64_t other = order[t];
            if (other == c)
                continue;
            if (ranked[t] - table->drift[c] - most >= nearest)
                break;
            double d = sqrt(centres_distance2(centres, c, centres, other, dims));
            if (d < nearest)
                nearest = d;
        }
        half[c] = 0.5 * nearest;
    }
}

int kmz_assign(const float *points, int dims, const double *weights, int64_t n, const double *centres,
               int64_t k, const int64_t *guesses, const double *floors, const kmz_table *table,
               int64_t *labels, double *upper, double *lower, double *sums, double *mass,
               kmz_poll *poll) {
    double most = largest(table->drift, k);
    kmz_grid grid = {0};
    /* With a table, a point no farther from its guess than half the distance from the
     * guess to its nearest other needs no search either (without one, large K, each
     * would be a search of the grid: not worth it here). */
    double *half = calloc(k, sizeof(double));
    if (!half || (table->m == 0 && kmz_grid_of_centres(&grid, centres, k, dims) < 0)) {
        free(half);
        return KMZ_NO_MEMORY;
    }
    if (table->m && k > 1)
        table_halves(centres, dims, k, table, most, half);
    for (int64_t i = 0; i < n; i++) {
        int64_t a = guesses[i];
        double first = sqrt(centre_distance2(points, i, centres, a, dims));
        if (first <= floors[i] || first <= half[a]) {
            labels[i] = a;
            upper[i] = first;
            lower[i] = floors[i] > half[a] ? floors[i] : half[a];
        } else {
            double second;
            a = two_nearest(points, dims, i, centres, k, a, table, &grid, most, &first, &second);
            labels[i] = a;
            upper[i] = sqrt(first);
            lower[i] = sqrt(second);
        }
        double w = weights[i];
        mass[a] += w;
        for (int j = 0; j < dims; j++)
            sums[dims * a + j] += w * points[dims * i + j];
        if ((i & 0xFFF) == 0 && kmz_poll_tick(poll, 0x1000 * 8)) {
            kmz_grid_free(&grid);
            free(half);
            return KMZ_INTERRUPTED;
        }
    }
    kmz_grid_free(&grid);
    free(half);
    return KMZ_OK;
}

int kmz_move(const float *points, int dims, const double *weights, int64_t n, const double *old,
             const double *centres, int64_t k, int64_t *labels, double *upper, double *lower,
             double *sums, double *mass, kmz_table *table, double *changed_out, kmz_poll *poll) {
    double *moved = malloc(sizeof(double) * k), *drop = calloc(k, sizeof(double));
    double *reach = calloc(k, sizeof(double)), *half = calloc(k, sizeof(double));
    int status = KMZ_NO_MEMORY;
    kmz_grid grid = {0}, before = {0}; /* without a table: grids of the centres after, and of the movers before */
    int64_t *mover = NULL;
    double *where = NULL, *speed = NULL;
    if (!moved || !drop || !reach || !half || (table->m == 0 && kmz_grid_of_centres(&grid, centres, k, dims) < 0))
        goto done;
    int64_t m = table->m, top = 0;
    double *drift = table->drift;
    for (int64_t c = 0; c < k; c++) {
        moved[c] = sqrt(centres_distance2(centres, c, old, c, dims));
        if (moved[c] > moved[top])
            top = c;
    }
    /* How much closer any centre but its own may have come to a point of cluster j:
     * centre c only can if |c_c - c_j| < upper + lower + moved[c] for some point of j
     * (triangle inequality), so only the moves of centres that near count. */
    if (m) {
        for (int64_t i = 0; i < n; i++)
            if (upper[i] + lower[i] > reach[labels[i]])
                reach[labels[i]] = upper[i] + lower[i];
        double most = largest(drift, k), fastest = moved[top];
        for (int64_t j = 0; j < k; j++) {
            const double *ranked = table->ranked + j * m;
            const int32_t *order = table->order + j * m;
            for (int64_t t = 0; t < k; t++) { /* nearest centres first: the rest are too far */
                int64_t c = order[t];
                if (ranked[t] - most - drift[j] >= reach[j] + fastest)
                    break;
                if (c != j && moved[c] > drop[j] && ranked[t] - drift[c] - drift[j] < reach[j] + moved[c])
                    drop[j] = moved[c];
            }
            if (kmz_poll_tick(poll, k)) {
                status = KMZ_INTERRUPTED;
                goto done;
            }
        }
    } else if (k > 1) {
        /* No table (large K): the same rule, the centres near enough found in a grid
         * of the ones that moved, where they were, within reach[j] + the largest
         * move. After the first passes most clusters keep their points and their
         * centres stay put: that grid holds a few of them, in coarse cells. */
        for (int64_t i = 0; i < n; i++)
            if (upper[i] + lower[i] > reach[labels[i]])
                reach[labels[i]] = upper[i] + lower[i];
        /* The centres that moved: where they were, how far, and each one's number among them. */
        int64_t movers = 0;
        where = malloc(sizeof(double) * dims * k), speed = malloc(sizeof(double) * k);
        if (!where || !speed || (mover = malloc(sizeof(int64_t) * k)) == NULL)
            goto done;
        for (int64_t c = 0; c < k; c++) {
            mover[c] = -1;
            if (moved[c] > 0) {
                for (int a = 0; a < dims; a++)
                    where[dims * movers + a] = old[dims * c + a];
                speed[movers] = moved[c];
                mover[c] = movers++;
            }
        }
        if (movers && kmz_grid_of_centres(&before, where, movers, dims) < 0)
            goto done;
        for (int64_t j = 0; j < k && movers; j++) {
            drop[j] = kmz_grid_fastest(&before, old + dims * j, reach[j], speed, moved[top], mover[j]);
            if (kmz_poll_tick(poll, 64)) {
                status = KMZ_INTERRUPTED;
                goto done;
            }
        }
    }
    for (int64_t c = 0; c < k; c++)
        drift[c] += moved[c];
    double most = largest(drift, k);
    /* Half the distance from each centre to its nearest other: a point nearer than
     * that to its own centre cannot be nearer to any other. Searched exactly, in table
     * order until the table proves the rest farther. Not without a table (large K):
     * searching the grid for each centre's nearest costs more than it saves (at K =
     * 4096 on Kodak images, Lloyd takes 0.029 s instead of 0.031 s), and half stays 0. */
    if (m && k > 1)
        table_halves(centres, dims, k, table, most, half);
    double changed = 0.0;
    for (int64_t i = 0; i < n; i++) {
        int64_t a = labels[i];
        upper[i] += moved[a];
        lower[i] -= drop[a];
        double bound = lower[i] > half[a] ? lower[i] : half[a];
        if ((i & 0xFFF) == 0 && kmz_poll_tick(poll, 0x1000 * 8)) {
            status = KMZ_INTERRUPTED;
            goto done;
        }
        if (upper[i] <= bound)
            continue;
        upper[i] = sqrt(centre_distance2(points, i, centres, a, dims));
        if (upper[i] <= bound)
            continue;
        double first, second;
        int64_t b = two_nearest(points, dims, i, centres, k, a, table, &grid, most, &first, &second);
        upper[i] = sqrt(first);
        lower[i] = sqrt(second);
        if (b != a) {
            labels[i] = b;
            double w = weights[i];
            changed += w;
            mass[a] -= w;
            mass[b] += w;
            for (int j = 0; j < dims; j++) {
                sums[dims * a + j] -= w * points[dims * i + j];
                sums[dims * b + j] += w * points[dims * i + j];
            }
        }
    }
    *changed_out = changed;
    status = KMZ_OK;
done:
    free(moved), free(drop), free(reach), free(half), free(mover), free(where), free(speed);
    kmz_grid_free(&grid);
    kmz_grid_free(&before);
    return status;
}

double kmz_error(const float *points, int dims, const double *weights, int64_t n, const double *centres,
                 const int64_t *labels) {
    double error = 0.0;
    for (int64_t i = 0; i < n; i++)
        error += weights[i] * centre_distance2(points, i, centres, labels[i], dims);
    return error;
}

void kmz_inherit(const float *points, int dims, int64_t n, const float *parents, const int64_t *parent_of,
                 const int64_t *labels, const double *lower, int64_t *guesses, double *floors) {
    for (int64_t i = 0; i < n; i++) {
        int64_t p = parent_of[i];
        guesses[i] = labels[p];
        floors[i] = lower[p] - sqrtf(point_distance2(points, i, parents, p, dims));
    }
}

int kmz_nearest(const float *points, int dims, int64_t n, const double *centres, int64_t k, int64_t *labels,
                kmz_poll *poll) {
    kmz_grid grid = {0};
    if (kmz_grid_of_centres(&grid, centres, k, dims) < 0)
        return KMZ_NO_MEMORY;
    for (int64_t i = 0; i < n; i++) {
        double at[KMZ_MAX_DIMS], first, second;
        for (int a = 0; a < dims; a++)
            at[a] = points[dims * i + a];
        labels[i] = kmz_grid_two_nearest(&grid, centres, at, -1, &first, &second);
        if ((i & 0xFFF) == 0 && kmz_poll_tick(poll, 0x1000 * 8)) {
            kmz_grid_free(&grid);
            return KMZ_INTERRUPTED;
        }
    }
    kmz_grid_free(&grid);
    return KMZ_OK;
}
